/// What this binary is, for `--version` and the `tsync_build_info` series.
public enum BuildInfo {
    /// The release, raised with each landing that changes what operators see.
    public static let version = "0.13.0"

    #if swift(>=6.3)
        public static let swiftVersion = "6.3"
    #elseif swift(>=6.2)
        public static let swiftVersion = "6.2"
    #else
        public static let swiftVersion = "6.x"
    #endif
}
