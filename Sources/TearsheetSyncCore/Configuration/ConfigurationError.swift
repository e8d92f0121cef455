/// A missing or malformed setting. The process stops at start with one line naming the
/// setting (exit code 2); the value itself is never repeated, as it may be a secret.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let setting: String
    public let problem: String

    public init(setting: String, _ problem: String) {
        self.setting = setting
        self.problem = problem
    }

    public var description: String { "\(setting): \(problem)" }
}
