import Testing
import Shared
@testable import Gateway

@Suite struct RoutingSealTests {
    let x = try! Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
    let routing = #"[[{"uid":"ffn.0.0","url":"http://127.0.0.1:1","weight":1}],[]]"#

    @Test func aSealedRecordPassesForItsOwnBatchOnly() throws {
        let seal = RoutingSeal(secret: "a secret of sixteen bytes or more")
        let issued = seal.seal(routing: routing, x: x, now: 1000)
        try seal.verify(issued, routing: routing, x: x, now: 1000)
        // A replica with the same secret accepts it; one with another secret does not.
        try RoutingSeal(secret: "a secret of sixteen bytes or more").verify(issued, routing: routing, x: x, now: 1000)
        var otherBatch = x
        otherBatch.scalars[3] = 5
        let refusals: [(String?, String, Tensor, RoutingSeal, Double, String)] = [
            (nil, routing, x, seal, 1000, "must hold the seal"),
            ("garbage", routing, x, seal, 1000, "EXPIRY:TAG"),
            (issued, routing, otherBatch, seal, 1000, "not issued by this gateway"),
            (issued, routing.replacingOccurrences("127.0.0.1:1", "169.254.169.254"), x, seal, 1000, "not issued by this gateway"),
            (issued, routing, try! Tensor(shape: [1, 4], scalars: [1, 2, 3, 4]), seal, 1000, "not issued by this gateway"),
            (issued, routing, x, RoutingSeal(), 1000, "not issued by this gateway"),
            (issued, routing, x, seal, 1000 + RoutingSeal.lifetime + 1, "expired"),
            ("9999999999" + issued.drop { $0 != ":" }, routing, x, seal, 1000, "not issued by this gateway"),
        ]
        for (given, text, batch, verifier, now, mentions) in refusals {
            #expect(throws: HTTPError.self) { try verifier.verify(given, routing: text, x: batch, now: now) }
            do { try verifier.verify(given, routing: text, x: batch, now: now) } catch {
                #expect(error.status == 400 && error.message.contains(mentions), "\(error.message)")
            }
        }
    }
}

private extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
