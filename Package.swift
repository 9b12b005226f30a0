// swift-tools-version: 6.0
// Hivemind in Swift: four REST services over one shared tensor and HTTP module.
import PackageDescription

/// One system-library target per C library, each behind a module map and a shim header.
func systemLibrary(_ name: String, pkgConfig: String, apt: String) -> Target {
    .systemLibrary(name: name, path: "Shared/C/\(name)", pkgConfig: pkgConfig, providers: [.apt([apt])])
}

let package = Package(
    name: "hivemind-swift",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Shared", targets: ["Shared"]),
        .executable(name: "hivemind-bench", targets: ["Bench"]),
        .executable(name: "hivemind-dht", targets: ["DHTNodeMain"]),
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
        .target(name: "DHTNode", dependencies: ["Shared"], path: "Services/DHTNode/Sources"),
        .executableTarget(name: "DHTNodeMain", dependencies: ["DHTNode"], path: "Services/DHTNode/Main"),
        .executableTarget(name: "Bench", dependencies: ["Shared", "DHTNode", "TestSupport"], path: "Services/Bench"),
        .executableTarget(name: "HTTPFixture", dependencies: ["Shared"], path: "Tests/Fixtures/HTTPFixture"),
        .target(name: "TestSupport", dependencies: ["Shared"], path: "Tests/Support"),
        .testTarget(name: "SharedTests", dependencies: ["Shared", "HTTPFixture", "TestSupport"], path: "Tests/SharedTests"),
        .testTarget(name: "DHTNodeTests", dependencies: ["DHTNode", "DHTNodeMain", "TestSupport"], path: "Tests/DHTNodeTests"),
    ]
)

// Every Swift target gets the same strict settings.
for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .swiftLanguageMode(.v6),
    ]
}
