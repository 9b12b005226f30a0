import Shared
import Testing
@testable import DHTNode

extension DHTTests {
    /// An owned subkey can be written only with its owner's signature, through any node.
    @Suite struct SignedRecordTests {
        @Test func onlyTheOwnerWritesItsSubkey() async throws {
            try await withSimulation(6) { simulation, http in
                let owner = Identity(), stranger = Identity()
                let key = "run42_progress", subkey = owner.ownerMarker
                let clients = simulation.urls.map { DHTClient(nodes: [$0], timeout: 15, http: http) }
                let expiration = expiring()
                let stored = try await clients[0].store(key, subkey: subkey, value: ["epoch": 1], expirationTime: expiration, signedBy: owner)
                #expect(stored.stored && stored.replicas == 5)

                // A stranger can neither overwrite nor delete (store null over) the owner's subkey, through any node.
                for (index, client) in clients.enumerated() {
                    let attempts: [(value: JSON, identity: Identity?)] = [(["epoch": 99], stranger), (.null, stranger), (["epoch": 99], nil)]
                    for (value, identity) in attempts {
                        await #expect(throws: DHTClientError.self, "through node \(index)") {
                            _ = try await client.store(key, subkey: subkey, value: value, expirationTime: expiration + 60, signedBy: identity)
                        }
                    }
                }
                do {
                    _ = try await clients[1].store(key, subkey: subkey, value: ["epoch": 99], expirationTime: expiration + 60, signedBy: stranger)
                    Issue.record("a stranger's signature was accepted")
                } catch let error as DHTClientError {
                    #expect(error.status == 403 && error.code == "bad_signature", "\(error)")
                }

                // A forged record sent straight to each node as a peer RPC is refused by every node.
                let genuine = owner.sign(DHTRecord(key: key, subkey: subkey, value: ["epoch": 1], expirationTime: expiration))
                var forged = genuine
                forged.value = ["epoch": 1_000]
                forged.expirationTime += 120
                for url in simulation.urls {
                    let response = try await http.send("POST", "\(url)/v1/dht/store", json: StoreRequest(sender: nil, records: [forged]).json)
                    #expect(try StoreResponse(fields: JSONObjectReader(response.json())).results == [false])
                }

                // Every node still returns the owner's value, and the owner can update it.
                for client in clients {
                    let entry = try await client.get(key, latest: true)
                    #expect(entry?.subkeys?[subkey]?.value == ["epoch": 1])
                }
                let updated = try await clients[2].store(key, subkey: subkey, value: ["epoch": 2], expirationTime: expiration + 60, signedBy: owner)
                let read = try await clients[3].get(key, latest: true)
                #expect(updated.stored)
                #expect(read?.subkeys?[subkey]?.value == ["epoch": 2])
            }
        }
    }
}
