@testable import Averager
import Shared

// What one averager reads from another, or from a newcomer downloading its state.

extension FuzzTarget {
    /// `Range` headers of state downloads.
    static let range = FuzzTarget(
        name: "range",
        about: "the averager's Range header parser (GET /v1/state) against state sizes from 0 to 2^40",
        seeds: { ["bytes=0-99", "bytes=100-", "bytes=5-3", "bytes=0-9223372036854775807", "bytes=-5", "bytes=1-2,4-5"].map { ($0, Array(seed: $0)) } }
    ) { bytes in
        // The size comes from the length, so the header text is the whole input.
        let header = String(decoding: bytes, as: UTF8.self)
        for size in [0, 1, 100, bytes.count, 1 << 40] {
            guard let range = try? Averager.byteRange(header, size: size) else { continue }
            fuzzCheck(range.lowerBound >= 0 && range.upperBound <= size, "'\(header)' gave \(range) of \(size) bytes")
            // Independently: `bytes=START-` or `bytes=START-END` with decimal numbers.
            let numbers = header.dropFirst("bytes=".count).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            fuzzCheck(header.hasPrefix("bytes=") && Int(numbers[0]) == range.lowerBound, "'\(header)' gave \(range)")
        }
    }

    /// Matchmaking messages: join requests, a leader's answers and the group it assembles, with
    /// what a member computes from that group (its shares, its parts, its next group key).
    static let join = FuzzTarget(
        name: "join",
        about: "JoinRequest, JoinResponse, LeaderOutcome and GroupInfo from JSON; load balancing, part plan and group key of accepted groups",
        seeds: { AveragerSeeds.messages.map { ($0.name, Array(seed: $0.json.serialized())) } }
    ) { bytes in
        guard let json = try? JSON.parse(bytes) else { return }
        if let request = try? JoinRequest(json: json) {
            fuzzCheck((try? JoinRequest(json: request.json)) == request, "a join request changed in a round trip")
        }
        if let response = try? JoinResponse(json: json) {
            fuzzCheck((try? JoinResponse(json: response.json)) == response, "a join response changed in a round trip")
        }
        let group: GroupInfo
        if let outcome = try? LeaderOutcome(json: json) {
            fuzzCheck((try? LeaderOutcome(json: outcome.json)) == outcome, "a leader's outcome changed in a round trip")
            guard case .begin(let begun) = outcome else { return }
            group = begun
        } else if let read = try? GroupInfo(json: json) {
            group = read
        } else {
            return
        }
        // What every member derives from an assembled group.
        let total = Int(truncatingIfNeeded: Hashing.fnv1a(group.groupID) % 100_000)
        // As AllReduceRound plans a round: declared bandwidths, else everyone that accepts connections.
        let bandwidths = group.members.map { $0.mode.acceptsConnections ? $0.bandwidth : 0 }
        if let shares = LoadBalancing.shares(total: total, bandwidths: bandwidths)
            ?? LoadBalancing.shares(total: total, bandwidths: group.members.map { $0.mode.acceptsConnections ? nil : 0 }) {
            fuzzCheck(shares.count == group.members.count && shares.allSatisfy { $0 >= 0 } && shares.reduce(0, +) == total,
                      "shares \(shares) of \(total) for bandwidths \(bandwidths)")
            let plan = PartPlan(tensorCounts: [total / 3, total - total / 3], shares: shares, partSize: 1 + total % 5000)
            fuzzCheck(plan.parts.reduce(0) { $0 + $1.count } == total && plan.parts.allSatisfy { shares.indices.contains($0.reducer) },
                      "a part plan that does not cover \(total) elements once")
        }
        if let peer = group.members.first?.peer, var key = try? GroupKey(prefix: "run", bits: "0110") {
            key.update(after: group, peer: peer, targetGroupSize: group.members.count % 3 == 0 ? nil : group.members.count)
            fuzzCheck(key.bits.count == 4, "group bits changed length: \(key.bits)")
        }
    }

    /// All-reduce parts: a sender's request and a reducer's answer.
    static let part = FuzzTarget(
        name: "part",
        about: "PartMessage.readRequest and readResponse (safetensors parts with sender, weight, accept and contributors)",
        seeds: { AveragerSeeds.parts }
    ) { bytes in
        let body = Array(bytes)
        if let request = try? PartMessage.readRequest(body) {
            fuzzCheck(!request.sender.isEmpty, "a part request without a sender")
            // A reducer answers in the codec the sender accepts: the answer must read back.
            let completion = PartReducer.Completion(part: 0, values: request.values, contributors: [0])
            if let answer = try? PartMessage.response(completion, codec: request.accept) {
                fuzzCheck((try? PartMessage.readResponse(answer))?.contributors == [0], "a reducer's answer does not read back")
            }
        }
        _ = try? PartMessage.readResponse(body)
    }
}

enum AveragerSeeds {
    static let member = GroupMember(peer: "http://127.0.0.1:8100", mode: .node, bandwidth: 1e6, metadata: ["epoch": 3])
    static let client = GroupMember(peer: "client-00ff", mode: .client, bandwidth: nil, metadata: .null)
    static let group = GroupInfo(groupID: String(repeating: "ab", count: 20), groupKey: "run.0b01",
                                 members: [member, client, GroupMember(peer: "http://127.0.0.1:8101", mode: .auxiliary, bandwidth: 0, metadata: [:])])

    static let messages: [(name: String, json: JSON)] = [
        ("join-request", JoinRequest(peer: member.peer, schemaHash: "abc", expiration: 1.7e9, clientMode: false, groupKey: "run.0b01", member: member).json),
        ("join-accepted", JoinResponse.accepted.json),
        ("join-refused", JoinResponse.refused(.notALeader, suggestedLeader: "http://127.0.0.1:8101").json),
        ("begin", LeaderOutcome.begin(group).json),
        ("disbanded", LeaderOutcome.disbanded(suggestedLeader: nil).json),
        ("group", group.json),
    ]

    static var parts: [(name: String, bytes: [UInt8])] {
        let values = WireSeeds.floats([10])
        return CompressionCodec.allCases.map { codec in
            ("request-\(codec.rawValue)", try! PartMessage.request(values: values, sender: member.peer, weight: 2, codec: codec))
        } + [("response", try! PartMessage.response(PartReducer.Completion(part: 0, values: values, contributors: [0, 2]), codec: .float16))]
    }
}
