// swift-tools-version:6.0
import PackageDescription

// Every target is compiled the same way: Swift 6 language mode, strict concurrency.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "tearsheet-sync",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tearsheet-sync", targets: ["tearsheet-sync"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", .upToNextMinor(from: "1.8.2")),
        .package(url: "https://github.com/apple/swift-log", .upToNextMinor(from: "1.16.2")),
        .package(url: "https://github.com/hummingbird-project/hummingbird", .upToNextMinor(from: "2.28.1")),
        .package(url: "https://github.com/apple/swift-http-types", .upToNextMinor(from: "1.8.0")),
        .package(url: "https://github.com/apple/swift-crypto", .upToNextMinor(from: "3.12.3")),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", .upToNextMinor(from: "2.13.0")),
        .package(url: "https://github.com/apple/swift-metrics", .upToNextMinor(from: "2.13.0")),
        .package(url: "https://github.com/swift-server/swift-prometheus", .upToNextMinor(from: "2.4.1")),
    ],
    targets: [
        // Thin C modules: one per Debian library, plus static-inline shims in their headers for
        // what Swift cannot call directly (variadic functions, macros).
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),

        // Runs blocking C calls on a dedicated thread per connection, bridged to async/await.
        .target(name: "Blocking", swiftSettings: swiftSettings),
        .target(name: "StableHashing", swiftSettings: swiftSettings),
        // Callers waiting their turn (pool leases, HTTP workers, call slots), cancellable.
        .target(name: "WaitingLine", swiftSettings: swiftSettings),
        .target(
            name: "AMQPClient",
            dependencies: ["CRabbitMQ", "Blocking"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PostgresClient",
            dependencies: ["CLibPQ", "Blocking", "StableHashing", "WaitingLine"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CurlHTTP",
            dependencies: ["CCurl", "Blocking", "WaitingLine"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BullhornClient",
            dependencies: ["CurlHTTP", "WaitingLine"],
            swiftSettings: swiftSettings
        ),
        // A faithful Bullhorn REST simulator, for the tests and the demo.
        .target(
            name: "BullhornSimulator",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TearsheetSyncCore",
            dependencies: [
                "AMQPClient", "PostgresClient", "CurlHTTP", "BullhornClient", "StableHashing",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // What the two executables share on their command lines.
        .target(
            name: "CommandLineSupport",
            dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "tearsheet-sync",
            dependencies: [
                "TearsheetSyncCore", "BullhornSimulator", "CommandLineSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "tearsheet-bench",
            dependencies: [
                "AMQPClient", "PostgresClient", "TearsheetSyncCore", "BullhornSimulator", "IntegrationSupport", "CommandLineSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/tearsheet-bench",
            exclude: [],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "IntegrationSupport",
            dependencies: [
                "AMQPClient", "PostgresClient", "CurlHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/IntegrationSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AMQPClientTests",
            dependencies: ["AMQPClient", "IntegrationSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PostgresClientTests",
            dependencies: ["PostgresClient", "IntegrationSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CurlHTTPTests",
            dependencies: [
                "CurlHTTP", "IntegrationSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BullhornClientTests",
            dependencies: [
                "BullhornClient", "BullhornSimulator", "IntegrationSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TearsheetSyncCoreTests",
            dependencies: [
                "TearsheetSyncCore", "IntegrationSupport", "BullhornSimulator", "tearsheet-sync",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
