import Foundation
import TestSupport

/// Debian's `chromium` in headless mode, for tests of the dashboard page.
/// It runs without a sandbox (tests run as root), without a GPU, with a
/// profile of its own, and may resolve no name: it can reach loopback only.
struct HeadlessChromium {
    static let path = "/usr/bin/chromium"
    static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: path) }

    /// Seconds a run may take before it is killed.
    var timeout = 60.0
    /// Milliseconds of page time (timers, polling) to let pass before dumping or capturing.
    var virtualTimeBudget = 4000

    /// The DOM after the page's scripts ran for `virtualTimeBudget`.
    func dumpDOM(_ url: String) async throws -> String {
        try await run(url, ["--dump-dom"])
    }

    /// Writes a PNG screenshot of the page after `virtualTimeBudget` to `path`.
    func screenshot(_ url: String, to path: String, width: Int, height: Int) async throws {
        _ = try await run(url, ["--screenshot=\(path)", "--window-size=\(width),\(height)", "--hide-scrollbars"])
    }

    private func run(_ url: String, _ arguments: [String]) async throws -> String {
        guard url.hasPrefix("http://127.0.0.1:") else { throw ServiceProcessError("only loopback URLs, got \(url)") }
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile.path)",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
            // Every name resolves to nothing, except the loopback address.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=\(virtualTimeBudget)",
        ]
        let result = try await ServiceProcess.run(Self.path, flags + arguments + [url], timeout: timeout)
        // Chromium exits 0 also when the page did not load; it says so on standard error.
        let failure = result.stderr.split(separator: "\n").first { $0.contains("Page load failed") }
        guard result.status == 0, failure == nil else {
            throw ServiceProcessError("chromium exited with \(result.status) on \(url): \(failure ?? result.stderr.suffix(2000))")
        }
        return result.stdout
    }
}
