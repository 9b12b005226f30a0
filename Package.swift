// swift-tools-version: 6.0
// Hivemind in Swift: four REST services over one shared tensor and HTTP module.
import PackageDescription

/// One system-library target per C library, each behind a module map and a shim header.
func systemLibrary(_ name: String, pkgConfig: String, apt: String) -> Target {
    .systemLibrary(name: name, path: "Shared/C/\(name)", pkgConfig: pkgConfig, providers: [.apt([apt])])
}

/// A service: its library (testable logic), its executable (a thin main) and its tests.
func service(_ name: String, folder: String, dependencies: [Target.Dependency] = ["Shared"]) -> [Target] {
    [
        .target(name: name, dependencies: dependencies, path: "Services/\(folder)/Sources"),
        .executableTarget(name: "\(name)Main", dependencies: [.target(name: name), "Shared"], path: "Services/\(folder)/Main"),
        .testTarget(name: "\(name)Tests", dependencies: [.target(name: name), .target(name: "\(name)Main"), "Shared", "TestSupport"],
                    path: "Tests/\(name)Tests"),
    ]
}

let package = Package(
    name: "hivemind-swift",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Shared", targets: ["Shared"]),
        .executable(name: "hivemind-dht", targets: ["DHTNodeMain"]),
        .executable(name: "hivemind-expert-host", targets: ["ExpertHostMain"]),
        .executable(name: "hivemind-gateway", targets: ["GatewayMain"]),
        .executable(name: "hivemind-averager", targets: ["AveragerMain"]),
        .executable(name: "hivemind", targets: ["HivemindCLI"]),
        .executable(name: "hivemind-bench", targets: ["Bench"]),
    ],
    dependencies: [
        // Ed25519 signatures of DHT records and SHA-1 ids.
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
    ],
    targets: [
        systemLibrary("CMicroHTTPD", pkgConfig: "libmicrohttpd", apt: "libmicrohttpd-dev"),
        systemLibrary("CCurl", pkgConfig: "libcurl", apt: "libcurl4-openssl-dev"),
        systemLibrary("CJansson", pkgConfig: "jansson", apt: "libjansson-dev"),
        systemLibrary("COpenBLAS", pkgConfig: "openblas", apt: "libopenblas-dev"),
        .target(
            name: "Shared",
            dependencies: ["CMicroHTTPD", "CCurl", "CJansson", "COpenBLAS", .product(name: "Crypto", package: "swift-crypto")],
            path: "Shared/Sources",
            linkerSettings: [.linkedLibrary("m")]
        ),
        .executableTarget(name: "HivemindCLI", dependencies: ["Shared"], path: "Services/CLI"),
        .executableTarget(name: "Bench", dependencies: ["Shared", "DHTNode", "TestSupport"], path: "Services/Bench"),
        .executableTarget(name: "HTTPFixture", dependencies: ["Shared"], path: "Tests/Fixtures/HTTPFixture"),
        .target(name: "TestSupport", dependencies: ["Shared"], path: "Tests/Support"),
        .testTarget(name: "SharedTests", dependencies: ["Shared", "HTTPFixture", "TestSupport"], path: "Tests/SharedTests"),
        // Validators of deploy/ and the network-namespace mesh, which runs every service's executable.
        .testTarget(name: "DeployTests", dependencies: ["Shared", "TestSupport", "DHTNodeMain", "ExpertHostMain", "AveragerMain",
                                                        "GatewayMain", "HivemindCLI"], path: "Tests/DeployTests"),
    ]
        + service("DHTNode", folder: "DHTNode")
        + service("ExpertHost", folder: "ExpertHost")
        + service("Gateway", folder: "Gateway")
        + service("Averager", folder: "Averager")
)

// Every Swift target gets the same strict settings.
for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .swiftLanguageMode(.v6),
    ]
}
