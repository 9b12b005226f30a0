import Testing
import Shared
@testable import Averager

extension Averagers {
    @Suite struct AllReduceTests {
        static func tensors(_ seed: UInt64) -> [(name: String, tensor: Tensor)] {
            var generator = SplitMix64(seed: seed)
            return [("w", Tensor.randomNormal(shape: [123], using: &generator)), ("b", Tensor.randomNormal(shape: [3], using: &generator))]
        }

        /// The reference's `test_allreduce_once` and `test_allreduce_weighted`:
        /// 4 averagers, some clients and auxiliaries, random weights, one round.
        @Test(arguments: [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)])
        func fourAveragersReachTheWeightedMean(_ roles: (clients: Int, auxiliaries: Int)) async throws {
            var modes = Array(repeating: AveragingMode.client, count: roles.clients) + Array(repeating: .auxiliary, count: roles.auxiliaries)
            modes += Array(repeating: .node, count: 4 - modes.count)
            var generator = SplitMix64(seed: UInt64(roles.clients * 3 + roles.auxiliaries))
            modes.shuffle(using: &generator)
            let weights = (0..<4).map { _ in Double.random(in: 0.01...10, using: &generator) }
            let inputs = (0..<4).map { Self.tensors(UInt64($0)) }
            // Parts of 16 elements, so that every reducer gets several.
            try await AveragerCluster.with(modes.map { .test(mode: $0, target: 4, partSizeBytes: 64) }) { cluster in
                let results = try await withThrowingTaskGroup(of: (Int, (tensors: [String: Tensor], record: JSON)).self) { group in
                    for index in 0..<4 {
                        group.addTask { (index, try await cluster.average(index, inputs[index], weight: weights[index], metadata: ["index": .int(index)])) }
                    }
                    return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
                }
                let senders = (0..<4).filter { modes[$0] != .auxiliary }
                let total = senders.reduce(0) { $0 + weights[$1] }
                for index in 0..<4 {
                    let (tensors, record) = results[index]!
                    #expect(record["members"]?.arrayValue?.count == 4)
                    #expect(record["outcome"] == "complete", "\(record)")
                    let gathered = Set(record["members"]!.arrayValue!.compactMap { $0["metadata"]?["index"]?.intValue })
                    #expect(gathered == [0, 1, 2, 3])
                    guard modes[index] != .auxiliary else {
                        #expect(tensors.isEmpty)
                        continue
                    }
                    for (position, name) in ["w", "b"].enumerated() {
                        let count = inputs[0][position].tensor.count
                        for element in 0..<count {
                            let expected = senders.reduce(0) { $0 + weights[$1] * Double(inputs[$1][position].tensor.scalars[element]) } / total
                            let actual = Double(tensors[name]!.scalars[element])
                            #expect(abs(actual - expected) < 1e-6, "\(name)[\(element)]: \(actual) vs \(expected)")
                        }
                    }
                }
            }
        }

        /// Parts travel compressed: the result is the mean up to the codec's
        /// error, and every member holds the same numbers (reducers return the
        /// average itself, encoded once for all).
        @Test(arguments: [CompressionCodec.float16, .uniform8])
        func compressedPartsAverageWithinTheCodecsError(_ codec: CompressionCodec) async throws {
            let inputs = (0..<4).map { Self.tensors(UInt64(10 + $0)) }
            try await AveragerCluster.with(Array(repeating: .test(target: 4, partSizeBytes: 64), count: 4)) { cluster in
                let results = try await withThrowingTaskGroup(of: (Int, [String: Tensor]).self) { group in
                    for index in 0..<4 { group.addTask { (index, try await cluster.average(index, inputs[index], codec: codec).tensors) } }
                    return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
                }
                let tolerance: Float = codec == .float16 ? 2e-3 : 0.1
                for (position, name) in ["w", "b"].enumerated() {
                    for element in 0..<inputs[0][position].tensor.count {
                        let mean = inputs.reduce(Float(0)) { $0 + $1[position].tensor.scalars[element] } / 4
                        let values = (0..<4).map { results[$0]![name]!.scalars[element] }
                        #expect(abs(values[0] - mean) < tolerance, "\(name)[\(element)]: \(values[0]) vs \(mean)")
                        #expect(Set(values).count == 1, "\(name)[\(element)]: members differ: \(values)")
                    }
                }
            }
        }
    }
}
