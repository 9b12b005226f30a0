import Shared
import Testing
@testable import Averager

/// Averaging that fits the link: measured throughput and timeouts derived from it.
@Suite struct LinkFitTests {
    @Test func throughputIsSmoothedOverRoundsAndIgnoresTinyOnes() {
        var estimate = ThroughputEstimate()
        estimate.observe(bytes: 1000, seconds: 1)
        #expect(estimate.bytesPerSecond == nil, "under 64 KiB says nothing")
        estimate.observe(bytes: 4 << 20, seconds: 2)
        #expect(estimate.bytesPerSecond == Double(2 << 20))
        estimate.observe(bytes: 4 << 20, seconds: 1)
        #expect(estimate.bytesPerSecond == Double(3 << 20), "the mean of the last sample and the estimate")
    }

    @Test func timeoutsFollowTheSlowestSendersWaveWithinTheOperatorsBounds() {
        // 4 parts in flight to each of 3 reducers, 512 KiB each: 6 MiB per wave; the slowest sender moves 625 kB/s.
        let slow = RoundTimeouts(bandwidths: [10e6, 625_000, nil], partWireBytes: 512 << 10, partsInFlight: 4, reducers: 3,
                                 floor: 5, ceiling: 60, assumedBytesPerSecond: 1e6)
        #expect(abs(slow.wave - Double(6 << 20) / 625_000) < 1e-9)
        #expect(abs(slow.senderTimeout - 3 * slow.wave) < 1e-9)
        #expect(abs(slow.reducerTimeout - 2 * slow.senderTimeout) < 1e-9 || slow.reducerTimeout == 60)
        // A fast link keeps the configured floor; a hopeless one stops at the all-reduce timeout.
        let fast = RoundTimeouts(bandwidths: [1e9, 1e9], partWireBytes: 512 << 10, partsInFlight: 4, reducers: 2,
                                 floor: 5, ceiling: 30, assumedBytesPerSecond: 1e6)
        #expect(fast.senderTimeout == 5 && fast.reducerTimeout == 10)
        let hopeless = RoundTimeouts(bandwidths: [1000], partWireBytes: 512 << 10, partsInFlight: 4, reducers: 2,
                                     floor: 5, ceiling: 30, assumedBytesPerSecond: 1e6)
        #expect(hopeless.senderTimeout == 30 && hopeless.reducerTimeout == 30)
        // Unmeasured members count at the assumed throughput; 8-bit parts move a quarter of the bytes.
        let unmeasured = RoundTimeouts(bandwidths: [nil, nil], partWireBytes: 128 << 10, partsInFlight: 4, reducers: 2,
                                       floor: 0.1, ceiling: 30, assumedBytesPerSecond: 1e6)
        #expect(abs(unmeasured.wave - Double(1 << 20) / 1e6) < 1e-9)
    }

    @Test func membersDeclareTheThroughputTheyMeasured() async throws {
        try await AveragerCluster.with([.test(target: 2), .test(target: 2)]) { cluster in
            let tensors: [(name: String, tensor: Tensor)] = [("x", Tensor(zeros: [1 << 18]))]
            func round() async throws -> [JSON] {
                async let first = cluster.average(0, tensors)
                async let second = cluster.average(1, tensors)
                return try await [first.record, second.record]
            }
            let before = try await round()
            #expect(before[0]["members"]?.arrayValue?.allSatisfy { $0["bandwidth"] == .null } == true, "nothing measured yet")
            let after = try await round()
            let declared = after[0]["members"]?.arrayValue?.compactMap { $0["bandwidth"]?.doubleValue } ?? []
            #expect(declared.count == 2 && declared.allSatisfy { $0 > 1e5 }, "\(after[0])")
        }
    }
}
