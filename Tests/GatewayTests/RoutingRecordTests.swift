import Testing
import Shared
@testable import Gateway

/// The routing record's JSON: the direct writer and reader against the generic JSON path.
@Suite struct RoutingRecordTests {
    static let grid = [4, 3]

    /// A record of `batch` samples with random experts on the grid, hosts and weights (some extreme).
    static func randomRecord(batch: Int, seed: UInt64) -> RoutingRecord {
        var generator = SplitMix64(seed: seed)
        let specialWeights: [Float] = [0, 1, 0.5, 1e-30, Float.leastNonzeroMagnitude, 0.1, 3.4e38, 1 / 3]
        return RoutingRecord(samples: (0..<batch).map { _ in
            (0..<Int(generator.next() % 5)).map { _ in
                let uid = ExpertUID(name: "ffn", coordinates: [Int(generator.next() % 4), Int(generator.next() % 3)])
                let weight = generator.next() % 4 == 0 ? specialWeights[Int(generator.next() % UInt64(specialWeights.count))]
                    : Float(Double(generator.next() % 1_000_000_007) / 1_000_000_007)
                return RoutingRecord.Route(uid: uid, url: "http://127.0.0.1:\(40000 + generator.next() % 5)", weight: weight)
            }
        })
    }

    @Test func theWrittenTextIsTheGenericJSONAndReadsBackExactly() throws {
        for seed in 0..<20 {
            let record = Self.randomRecord(batch: 1 + Int(seed) * 7, seed: UInt64(seed))
            let text = record.serialized()
            // The same JSON value as the generic path (weights as doubles that round to the same floats).
            let parsed = try JSON.parse(text)
            #expect(try RoutingRecord(json: parsed, prefix: "ffn.", gridSize: Self.grid, batch: record.samples.count) == record)
            #expect(parsed.arrayValue?.count == record.samples.count)
            // The direct reader, and the reader given the generic writer's text.
            #expect(CompactRoutingReader.read(text, prefix: "ffn.", gridSize: Self.grid) == record.samples)
            #expect(try RoutingRecord(text: record.json.serialized(), prefix: "ffn.", gridSize: Self.grid, batch: record.samples.count) == record)
        }
    }

    @Test func otherSpellingsOfTheSameRecordReadTheSame() throws {
        let expected = RoutingRecord(samples: [[RoutingRecord.Route(uid: ExpertUID("ffn.1.2")!, url: "http://h:1/a\"b", weight: 1)], []])
        let spellings = [
            #"[[{"uid":"ffn.1.2","url":"http://h:1/a\"b","weight":1}],[]]"#,
            #" [ [ { "weight" : 1.0, "url" : "http:\/\/h:1\/a\"b", "uid" : "ffn.1.2", "extra": null } ] , [ ] ] "#,
            #"[[{"uid":"ffn.1.2","url":"http://h:1/a\"b","weight":1e0}],[]]"#,
        ]
        for text in spellings {
            #expect(try RoutingRecord(text: text, prefix: "ffn.", gridSize: Self.grid, batch: 2) == expected, "\(text)")
        }
        #expect(expected.serialized() == #"[[{"uid":"ffn.1.2","url":"http://h:1/a\"b","weight":1.0}],[]]"#)
    }

    @Test func badRecordsAreRefusedWithTheGenericErrors() {
        let cases: [(text: String, status: Int, mentions: String)] = [
            ("not json", 400, "routing record"),
            (#"[[{"uid":"ffn.1.2","url":"u","weight":1}]]"#, 400, "array of 2 samples"),
            (#"[[{"uid":"ffn.1.2","url":"u","weight":-1}],[]]"#, 400, "non-negative weight"),
            (#"[[{"uid":"ffn.1.2","url":"u","weight":01}],[]]"#, 400, "routing record"),
            (#"[[{"uid":"ffn.1.x","url":"u","weight":1}],[]]"#, 400, "valid uid"),
            (#"[[{"uid":"ffn.4.0","url":"u","weight":1}],[]]"#, 422, "ffn.4.0"),
            (#"[[{"uid":"moe.1.0","url":"u","weight":1}],[]]"#, 422, "moe.1.0"),
            (#"[[{"uid":"ffn.1","url":"u","weight":1}],[]]"#, 422, "ffn.1"),
            (#"[{"uid":"ffn.1.0","url":"u","weight":1},[]]"#, 400, "routing[0]"),
            // Found by `make fuzz` (routing-record): finite as a Double, infinite as the Float it is kept as,
            // so writing the record again trapped. Compact and spaced, so both readers see it.
            (#"[[{"uid":"ffn.1.2","url":"u","weight":1e300}],[]]"#, 400, "non-negative weight"),
            (#"[[{"uid": "ffn.1.2", "url": "u", "weight": 3.5e38}], []]"#, 400, "non-negative weight"),
        ]
        for testCase in cases {
            do {
                _ = try RoutingRecord(text: testCase.text, prefix: "ffn.", gridSize: Self.grid, batch: 2)
                Issue.record("accepted \(testCase.text)")
            } catch {
                #expect(error.status == testCase.status && error.message.contains(testCase.mentions), "\(testCase.text): \(error)")
            }
        }
    }

    @Test func weightsUseTheFewestDigitsThatReadBack() {
        #expect(JSONText.number(0.25) == "0.25")
        #expect(JSONText.number(1) == "1.0")
        var generator = SplitMix64(seed: 5)
        for _ in 0..<10_000 {
            let value = Float(bitPattern: UInt32(truncatingIfNeeded: generator.next()) & 0x7F7F_FFFF)
            #expect(Float(Double(JSONText.number(value))!) == value)
        }
    }
}
