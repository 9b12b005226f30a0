import Foundation
import Testing
@testable import Shared
import TestSupport

/// The link emulator that tests and benchmarks put between services: its
/// schedule (exact, on its own clock) and its proxy (lower bounds that hold
/// on any machine, loose upper bounds; its accuracy is a figure of
/// `hivemind-bench wan`).
@Suite struct LinkEmulatorTests {
    static func host(_ name: String, delay: Double, down: Double, up: Double, jitter: Double = 0, reset: Double = 0) -> EmulatedHost {
        EmulatedHost(name: name, profile: LinkProfile(name: name, delay: delay, jitter: jitter, downBitsPerSecond: down * 8,
                                                      upBitsPerSecond: up * 8, resetProbability: reset))
    }

    @Test func scheduleAddsDelaysAndSerializesOnBothLinks() {
        let sender = Self.host("a", delay: 0.010, down: 10e6, up: 1e6)
        let receiver = Self.host("b", delay: 0.020, down: 10e6, up: 1e6)
        var path = LinkPath(from: sender, to: receiver)
        // 100 kB leave a's 1 MB/s uplink after 0.1 s, cross 30 ms, then b's 10 MB/s downlink in 0.01 s.
        #expect(abs(path.delivery(of: 100_000, at: 0) - 0.14) < 1e-9)
        // The next chunk queues behind the first on a's uplink.
        #expect(abs(path.delivery(of: 100_000, at: 0) - 0.24) < 1e-9)
        // Another connection from a shares the uplink: it waits too.
        var other = LinkPath(from: sender, to: Self.host("c", delay: 0, down: 1e9, up: 1e9))
        #expect(abs(other.delivery(of: 100_000, at: 0.05) - (0.3 + 0.010 + 0.0001)) < 1e-9)
    }

    @Test func deliveriesKeepTheirOrderDespiteJitter() {
        var path = LinkPath(from: Self.host("a", delay: 0.05, down: 1e9, up: 1e9, jitter: 0.04),
                            to: Self.host("b", delay: 0.05, down: 1e9, up: 1e9, jitter: 0.04))
        var last = -Double.infinity
        var earliest = Double.infinity
        for index in 0..<1000 {
            let at = Double(index) * 0.001
            let delivery = path.delivery(of: 100, at: at)
            #expect(delivery >= last)
            earliest = min(earliest, delivery - at)
            last = delivery
        }
        #expect(earliest >= 0.02 - 1e-9, "the delay never drops below delay - jitter on each side")
    }

    @Test func stallsTakeTheirShareOfTime() {
        // 1 stall per 10 s of 1 s each: over 10,000 s of 0.1 s chunks, the link waits about 1/11 of the time.
        let host = EmulatedHost(name: "s", profile: LinkProfile(name: "s", delay: 0, downBitsPerSecond: 8e6, upBitsPerSecond: 8e6,
                                                               stallRate: 0.1, stallSeconds: 1))
        var time = 0.0
        var sent = 0
        while time < 10_000 {
            time = host.up.transmit(100_000, at: time)
            sent += 1
        }
        let busyFraction = Double(sent) * 0.1 / time
        #expect(busyFraction > 0.87 && busyFraction < 0.95, "\(busyFraction)")
    }

    /// An HTTP server behind the emulator on loopback.
    static func withProxiedServer(caller: EmulatedHost, callee: EmulatedHost,
                                  _ body: (_ url: String, _ emulator: LinkEmulator) async throws -> Void) async throws {
        let emulator = try LinkEmulator()
        defer { emulator.stop() }
        emulator.add(callee)
        emulator.defaultHost = caller
        try await withTestServer(maxBodyBytes: 8 << 20, exampleRoutes) { url, server in
            let port = try emulator.proxy(to: "127.0.0.1", port: UInt16(server.port), host: callee.name)
            try await body("http://127.0.0.1:\(port)", emulator)
        }
    }

    @Test func requestsTakeTheRoundTripAndTheHandshake() async throws {
        let client = HTTPClient()
        defer { client.shutdown() }
        try await Self.withProxiedServer(caller: Self.host("a", delay: 0.02, down: 1e9, up: 1e9),
                                         callee: Self.host("b", delay: 0.03, down: 1e9, up: 1e9)) { url, emulator in
            // RTT 100 ms; the first call also pays the handshake.
            var started = Clock.now
            _ = try await client.post("\(url)/echo", bytes: [1])
            let first = Clock.now - started
            started = Clock.now
            _ = try await client.post("\(url)/echo", bytes: [2])
            let second = Clock.now - started
            #expect(first >= 0.2 - 0.002, "\(first)")
            #expect(second >= 0.1 - 0.002, "\(second)")
            #expect(second < 0.6, "loose: a loaded machine adds, the emulator must not add much: \(second)")
            #expect(emulator.deliveredBytes > 0)
        }
    }

    @Test func bodiesTakeTheirTimeOnTheNarrowestLink() async throws {
        let client = HTTPClient()
        defer { client.shutdown() }
        // 256 KiB up a 256 KB/s uplink: at least 1 s.
        try await Self.withProxiedServer(caller: Self.host("a", delay: 0.001, down: 1e9, up: 256_000),
                                         callee: Self.host("b", delay: 0.001, down: 1e9, up: 1e9)) { url, _ in
            let body = [UInt8](repeating: 7, count: 256 << 10)
            let started = Clock.now
            let response = try await client.post("\(url)/echo", bytes: body, timeout: 20)
            let seconds = Clock.now - started
            #expect(response.body == body)
            #expect(seconds >= Double(256 << 10) / 256_000 - 0.01, "\(seconds)")
            #expect(seconds < 4, "\(seconds)")
        }
    }

    @Test func aPartitionDeliversNothingAndItsConnectionsAreResetWhenItHeals() async throws {
        let client = HTTPClient()
        defer { client.shutdown() }
        try await Self.withProxiedServer(caller: Self.host("a", delay: 0.001, down: 1e9, up: 1e9),
                                         callee: Self.host("b", delay: 0.001, down: 1e9, up: 1e9)) { url, emulator in
            _ = try await client.post("\(url)/echo", bytes: [1])
            emulator.partition("b")
            await #expect(throws: HTTPClientError.self) { _ = try await client.post("\(url)/echo", bytes: [2], timeout: 0.5) }
            emulator.heal("b")
            let response = try await client.post("\(url)/echo", bytes: [3], timeout: 5)
            #expect(response.body == [3])
        }
    }

    @Test func connectionsAreResetAtTheProfilesRate() async throws {
        let client = HTTPClient()
        defer { client.shutdown() }
        try await Self.withProxiedServer(caller: Self.host("a", delay: 0.001, down: 1e9, up: 1e9, reset: 1),
                                         callee: Self.host("b", delay: 0.001, down: 1e9, up: 1e9)) { url, emulator in
            // Every connection is reset within 2 s: a slower call on one fails.
            await #expect(throws: HTTPClientError.self) { _ = try await client.get("\(url)/sleep?seconds=3", timeout: 10) }
            #expect(emulator.resets >= 1)
        }
    }
}
