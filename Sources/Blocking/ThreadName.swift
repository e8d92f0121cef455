#if canImport(Glibc)
import Glibc
#endif

/// Names the calling thread as `top -H`, `ps -L`, perf and gdb show it, through the kernel's
/// own file for it. Linux keeps 15 bytes of a thread's name, so the name is cut to whole
/// characters that fit. (Foundation's `Thread` on Linux does not apply a name set before
/// `start`, and setting it from inside left some threads unnamed beside the whole test suite:
/// a thread keeps the name of the thread that started it, a cooperative pool's.)
public func nameCurrentThread(_ name: String) {
    var fitting = ""
    for character in name {
        guard fitting.utf8.count + character.utf8.count <= 15 else { break }
        fitting.append(character)
    }
    let file = open("/proc/thread-self/comm", O_WRONLY)
    guard file >= 0 else { return }
    defer { close(file) }
    _ = fitting.withCString { write(file, $0, strlen($0)) }
}
