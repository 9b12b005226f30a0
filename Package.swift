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
    ],
    dependencies: [],
    targets: [
        systemLibrary("CMicroHTTPD", pkgConfig: "libmicrohttpd", apt: "libmicrohttpd-dev"),
        systemLibrary("CCurl", pkgConfig: "libcurl", apt: "libcurl4-openssl-dev"),
        systemLibrary("CJansson", pkgConfig: "jansson", apt: "libjansson-dev"),
        systemLibrary("COpenBLAS", pkgConfig: "openblas", apt: "libopenblas-dev"),
        .target(
            name: "Shared",
            dependencies: ["CMicroHTTPD", "CCurl", "CJansson", "COpenBLAS"],
            path: "Shared/Sources",
            linkerSettings: [.linkedLibrary("m")]
        ),
        .executableTarget(name: "Bench", dependencies: ["Shared"], path: "Services/Bench"),
        .executableTarget(name: "HTTPFixture", dependencies: ["Shared"], path: "Tests/Fixtures/HTTPFixture"),
        .testTarget(name: "SharedTests", dependencies: ["Shared", "HTTPFixture"], path: "Tests/SharedTests"),
        .target(name: "Averager", dependencies: ["Shared"], path: "Services/Averager/Sources"),
        .testTarget(name: "AveragerTests", dependencies: ["Averager"], path: "Tests/AveragerTests"),
    ]
)

// Every Swift target gets the same strict settings.
for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .swiftLanguageMode(.v6),
    ]
}
