// swift-tools-version: 6.0
// Hivemind in Swift: four REST services over one shared tensor and HTTP module.
import PackageDescription

/// One system-library target per C library, each behind a module map and a shim header.
func systemLibrary(_ name: String, pkgConfig: String, apt: String) -> Target {
    .systemLibrary(name: name, path: "Shared/C/\(name)", pkgConfig: pkgConfig, providers: [.apt([apt])])
}

/// A service: its library (testable logic), its executable (a thin main) and its tests.
/// A service that needs no tensors depends on "SharedCore" instead of "Shared" (the DHT node).
func service(_ name: String, folder: String, dependencies: [Target.Dependency] = ["Shared"]) -> [Target] {
    [
        .target(name: name, dependencies: dependencies, path: "Services/\(folder)/Sources"),
        .executableTarget(name: "\(name)Main", dependencies: [.target(name: name)] + dependencies, path: "Services/\(folder)/Main"),
        .testTarget(name: "\(name)Tests", dependencies: [.target(name: name), .target(name: "\(name)Main"), "Shared", "TestSupport"],
                    path: "Tests/\(name)Tests"),
    ]
}

let package = Package(
    name: "hivemind-swift",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Shared", targets: ["Shared"]),
        .library(name: "SharedCore", targets: ["SharedCore"]),
        .executable(name: "hivemind-dht", targets: ["DHTNodeMain"]),
        .executable(name: "hivemind-expert-host", targets: ["ExpertHostMain"]),
        .executable(name: "hivemind-gateway", targets: ["GatewayMain"]),
        .executable(name: "hivemind-averager", targets: ["AveragerMain"]),
        .executable(name: "hivemind", targets: ["HivemindCLI"]),
        .executable(name: "hivemind-bench", targets: ["Bench"]),
    ],
    targets: [
        systemLibrary("CMicroHTTPD", pkgConfig: "libmicrohttpd", apt: "libmicrohttpd-dev"),
        systemLibrary("CCurl", pkgConfig: "libcurl", apt: "libcurl4-openssl-dev"),
        systemLibrary("CJansson", pkgConfig: "jansson", apt: "libjansson-dev"),
        systemLibrary("COpenBLAS", pkgConfig: "openblas", apt: "libopenblas-dev"),
        // Certificates, SHA-256 and HMAC, from the libcrypto that libcurl loads anyway.
        systemLibrary("COpenSSL", pkgConfig: "libcrypto", apt: "libssl-dev"),
        systemLibrary("CSodium", pkgConfig: "libsodium", apt: "libsodium-dev"),  // Ed25519, twice as fast as libcrypto's
        .systemLibrary(name: "CMalloc", path: "Shared/C/CMalloc"),  // glibc's malloc.h, for buffer reuse (AllocatorTuning)
        // Two layers, so that a service without tensors stays small (an idle DHT node < 20 MB):
        // SharedCore (Shared/Core): HTTP server and client, JSON, service plumbing, DHT client and
        //   records; no Foundation, no OpenBLAS.
        // Shared (Shared/Sources): tensors, neural layers, wire formats, MoE; re-exports SharedCore.
        .target(
            name: "SharedCore",
            dependencies: ["CMicroHTTPD", "CCurl", "CJansson", "COpenSSL", "CSodium", "CMalloc"],
            path: "Shared/Core"
        ),
        .target(
            name: "Shared",
            dependencies: ["SharedCore", "COpenBLAS"],
            path: "Shared/Sources",
            linkerSettings: [.linkedLibrary("m")]
        ),
        .executableTarget(name: "HivemindCLI", dependencies: ["Shared"], path: "Services/CLI"),
        .executableTarget(name: "Bench", dependencies: ["Shared", "DHTNode", "TestSupport"], path: "Services/Bench"),
        .executableTarget(name: "HTTPFixture", dependencies: ["Shared"], path: "Tests/Fixtures/HTTPFixture"),
        .target(name: "TestSupport", dependencies: ["Shared"], path: "Tests/Support", exclude: ["hostile_peer.py", "tls_proxy.py"]),
        .testTarget(name: "SharedTests", dependencies: ["Shared", "HTTPFixture", "TestSupport"], path: "Tests/SharedTests"),
        // The CLI end to end: `hivemind mesh up`, trainers, the Python example; needs every service's executable.
        .testTarget(name: "CLITests", dependencies: ["Shared", "TestSupport", "HivemindCLI", "DHTNodeMain", "ExpertHostMain", "GatewayMain", "AveragerMain"],
                    path: "Tests/CLITests"),
        // schemathesis and clients generated from the served documents against every service as a process
        // (needs their executables built).
        .testTarget(name: "ConformanceTests",
                    dependencies: ["Shared", "TestSupport", "DHTNode", "ExpertHost", "Averager", "Gateway",
                                   "DHTNodeMain", "ExpertHostMain", "AveragerMain", "GatewayMain"],
                    path: "Tests/ConformanceTests", exclude: ["schemathesis.toml", "schemathesis_hooks.py", "generated_clients.py"]),
        // Attacks on every service as a process, each against a hostile peer the test runs.
        .testTarget(name: "SecurityTests", dependencies: ["Shared", "TestSupport", "DHTNodeMain", "ExpertHostMain", "AveragerMain", "GatewayMain"],
                    path: "Tests/SecurityTests"),
        // Validators of deploy/ and the network-namespace mesh, which runs every service's executable.
        .testTarget(name: "DeployTests", dependencies: ["Shared", "TestSupport", "DHTNodeMain", "ExpertHostMain", "AveragerMain",
                                                        "GatewayMain", "HivemindCLI"], path: "Tests/DeployTests"),
        // Meshes over emulated internet links (network namespaces, the link emulator, NAT and relays).
        .testTarget(name: "WANTests", dependencies: ["Shared", "TestSupport", "DHTNodeMain", "ExpertHostMain", "AveragerMain",
                                                     "GatewayMain", "HivemindCLI", "Bench"], path: "Tests/WANTests"),
    ]
        + service("DHTNode", folder: "DHTNode", dependencies: ["SharedCore"])
        + service("ExpertHost", folder: "ExpertHost")
        + service("Gateway", folder: "Gateway")
        + service("Averager", folder: "Averager")
)

// Release executables are linked by lld with packed relative relocations (DT_RELR): the Swift
// metadata's 26,000 relocations take 5 KB instead of 600, which the loader reads at every start and
// which stayed resident in every process (0.55 MB of an idle DHT node's). Only glibc 2.36 and
// later load them (Debian 12, Ubuntu 23.04), so a build on an older glibc keeps the classic format.
#if canImport(Glibc)
import Glibc
let loaderReadsPackedRelocations: Bool = {
    var text = [CChar](repeating: 0, count: 64)  // "glibc 2.36"
    _ = confstr(Int32(_CS_GNU_LIBC_VERSION), &text, text.count)
    let version = String(decoding: text.prefix { $0 != 0 }.map { UInt8($0) }, as: UTF8.self)
        .split(separator: " ").last?.split(separator: ".").compactMap { Int($0) } ?? []
    return !version.lexicographicallyPrecedes([2, 36])
}()
#else
let loaderReadsPackedRelocations = false
#endif
for target in package.targets where target.type == .executable {
    target.linkerSettings = loaderReadsPackedRelocations
        ? [.unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"], .when(configuration: .release))]
        : []
}

// The DHT node's release binary links the Swift runtime statically: only the
// runtime pages it touches are resident, which keeps an idle node under 20 MB.
for target in package.targets where target.name == "DHTNodeMain" {
    target.linkerSettings! += [.unsafeFlags(["-static-stdlib"], .when(configuration: .release))]
}
// Nor does the DHT node's code import `_StringProcessing` (implicit otherwise): its searchers and
// the regex parser they bring were a megabyte of the binary, some of it touched at start.
// SharedCore searches text with its own Text/TextSearch.swift.
for target in package.targets where ["SharedCore", "DHTNode", "DHTNodeMain"].contains(target.name) {
    target.swiftSettings = [.unsafeFlags(["-Xfrontend", "-disable-implicit-string-processing-module-import"])]
}

// `make fuzz`: one executable holds every libFuzzer target (Tests/Fuzz). It has no `main` of its own,
// libFuzzer's is linked in by `--sanitize=fuzzer`, so it exists only in the fuzzing build, which sets
// HIVEMIND_FUZZ; an ordinary `swift build` would fail to link it.
if Context.environment["HIVEMIND_FUZZ"] != nil {
    package.products.append(.executable(name: "hivemind-fuzz", targets: ["Fuzz"]))
    package.targets.append(.executableTarget(name: "Fuzz", dependencies: ["Shared", "DHTNode", "ExpertHost", "Gateway", "Averager"],
                                             path: "Tests/Fuzz/Sources"))
}

// Every Swift target gets the same strict settings.
for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .swiftLanguageMode(.v6),
    ]
}
