import Testing
import Shared
@testable import Averager

extension Averagers {
    @Suite struct MoshpitTests {
        /// 8 averagers in groups of 2 reach the exact global mean after 3 rounds
        /// (the reference's `test_allreduce_grid`), 16 in groups of 4 after 2.
        @Test(arguments: [(8, 2, 3), (16, 4, 2)])
        func repeatedSmallGroupsReachTheGlobalMean(_ setup: (peers: Int, groupSize: Int, rounds: Int)) async throws {
            let width = GroupKey.ceilLog2(setup.peers / setup.groupSize)
            let configurations = (0..<setup.peers).map { index -> AveragerConfiguration in
                var bits = String(index / setup.groupSize, radix: 2)
                bits = String(repeating: "0", count: width - bits.count) + bits
                return .test(target: setup.groupSize, bits: bits)
            }
            var generator = SplitMix64(seed: UInt64(setup.peers))
            var values = (0..<setup.peers).map { _ in Tensor.randomNormal(shape: [5], using: &generator) }
            let mean = (0..<5).map { element in values.reduce(0) { $0 + Double($1.scalars[element]) } / Double(setup.peers) }
            try await AveragerCluster.with(configurations) { cluster in
                for round in 1...setup.rounds {
                    let inputs = values
                    let results = try await withThrowingTaskGroup(of: (Int, (tensors: [String: Tensor], record: JSON)).self) { group in
                        for index in 0..<setup.peers {
                            group.addTask { (index, try await cluster.average(index, [("x", inputs[index])])) }
                        }
                        return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
                    }
                    for index in 0..<setup.peers {
                        let (tensors, record) = results[index]!
                        #expect(record["members"]?.arrayValue?.count == setup.groupSize, "round \(round): \(record)")
                        values[index] = tensors["x"]!
                    }
                    let spread = (0..<5).map { element in values.map { Double($0.scalars[element]) }.max()! - values.map { Double($0.scalars[element]) }.min()! }
                    #expect(round == setup.rounds || spread.max()! > 1e-6, "round \(round) already reached the mean")
                }
            }
            for value in values {
                for element in 0..<5 { #expect(abs(Double(value.scalars[element]) - mean[element]) < 1e-6) }
            }
        }
    }
}
