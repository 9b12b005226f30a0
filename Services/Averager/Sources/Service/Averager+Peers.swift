import Shared

/// The requests other averagers send: matchmaking and parts.
extension Averager {
    /// Answers a join request (`POST /v1/matchmaking/join`).
    func join(_ request: JoinRequest) async -> JoinResponse {
        guard let matchmaker = existingMatchmaker(forKey: request.groupKey) else {
            let reason: JoinRefusal = GroupKey.prefix(ofKey: request.groupKey) == nil ? .protocolViolation : .notLookingForGroup
            return .refused(reason, suggestedLeader: nil)
        }
        return await matchmaker.join(request)
    }

    /// Answers an accepted follower's wait (`POST /v1/matchmaking/await`).
    func awaitOutcome(peer: PeerID, groupKey: String) async -> LeaderOutcome {
        guard let matchmaker = existingMatchmaker(forKey: groupKey) else { return .disbanded(suggestedLeader: nil) }
        return await matchmaker.awaitOutcome(peer: peer)
    }

    /// Answers a follower that gives up (`POST /v1/matchmaking/leave`).
    func leave(peer: PeerID, groupKey: String, expiration: Double) async -> LeaderOutcome {
        guard let matchmaker = existingMatchmaker(forKey: groupKey) else { return .disbanded(suggestedLeader: nil) }
        return await matchmaker.leave(peer: peer, expiration: expiration)
    }

    /// Takes a part from a sender (`POST /v1/groups/{group_id}/parts/{part}`)
    /// and answers with the part's average once every sender delivered it.
    func receivePart(groupID: String, part: Int, body: [UInt8]) async throws(AveragerError) -> [UInt8] {
        let (values, peer, weight, accept) = try PartMessage.readRequest(body)
        // A member learns of its group one answer later than the leader, seconds later across a slow
        // link: wait for the round to begin here for two request timeouts (as measured), within the all-reduce's.
        let patience = min(configuration.allreduceTimeout, 2 * roundTrips.requestTimeout(floor: configuration.requestTimeout))
        guard let session = await registry.session(groupID, patience: patience) else {
            throw AveragerError(.unknownGroup, "this averager runs no round of group \(groupID)")
        }
        guard let sender = session.group.index(of: peer) else {
            throw AveragerError(.notInGroup, "\(peer) is not a member of group \(groupID)")
        }
        metrics.increment("bytes_received_total", by: Double(body.count))
        switch await session.submit(part: part, sender: sender, weight: weight, values: consume values) {
        case .failure(let error):
            throw error
        case .success(let completion):
            do {
                let response = try await session.answer(completion, codec: accept)
                metrics.increment("bytes_sent_total", by: Double(response.count))
                return response
            } catch {
                throw AveragerError(.unprocessable, "cannot encode the average of part \(part): \(error.message)")
            }
        }
    }
}
