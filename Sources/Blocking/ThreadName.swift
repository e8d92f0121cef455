import Foundation

/// Names the calling thread as `top -H`, `ps -L` and gdb show it. Linux keeps 15 bytes of a
/// thread's name and refuses a longer one outright, so the name is cut to whole characters
/// that fit. (A thread started by Foundation's `Thread` on Linux does not take the `name` set
/// before `start`: it keeps the name of the thread that started it, a cooperative pool's.)
public func nameCurrentThread(_ name: String) {
    var fitting = ""
    for character in name {
        guard fitting.utf8.count + character.utf8.count <= 15 else { break }
        fitting.append(character)
    }
    Thread.current.name = fitting
}
