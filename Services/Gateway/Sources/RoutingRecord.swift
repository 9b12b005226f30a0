import Shared

/// Which experts answered for each sample of a forward call, with their
/// mixture weights. The gateway keeps no state between forward and backward:
/// the client sends this record back with its backward call, so any gateway
/// replica can serve it. It travels as JSON in the safetensors
/// `__metadata__["routing"]`.
public struct RoutingRecord: Sendable, Equatable {
    public struct Route: Sendable, Equatable {
        public let uid: ExpertUID
        public let url: String
        public let weight: Float
    }

    /// Per sample, the experts that answered, best score first.
    public var samples: [[Route]]

    public var json: JSON {
        .array(samples.map { routes in
            .array(routes.map { ["uid": .string($0.uid.description), "url": .string($0.url), "weight": .double(Double($0.weight))] })
        })
    }

    /// Reads a record, checking that every uid lies under `prefix` on a grid of `gridSize`.
    public init(json: JSON, prefix: String, gridSize: [Int], batch: Int) throws(HTTPError) {
        guard let samples = json.arrayValue, samples.count == batch else {
            throw .badRequest("metadata 'routing' must be the forward call's routing record: an array of \(batch) samples")
        }
        self.samples = try samples.enumerated().map { index, routes throws(HTTPError) in
            guard let routes = routes.arrayValue else { throw .badRequest("routing[\(index)] must be an array of experts") }
            return try routes.map { route throws(HTTPError) in
                guard let uid = route["uid"]?.stringValue.flatMap(ExpertUID.init), let url = route["url"]?.stringValue,
                      let weight = route["weight"]?.doubleValue, weight.isFinite, weight >= 0 else {
                    throw .badRequest("routing[\(index)] has an entry without a valid uid, url and non-negative weight: \(route.serialized())")
                }
                guard uid.prefixSteps.first?.prefix == prefix,
                      uid.coordinates.count == gridSize.count, zip(uid.coordinates, gridSize).allSatisfy({ $0 < $1 }) else {
                    throw .unprocessable("routing[\(index)] names \(uid), which is not on the grid \(prefix)\(gridSize.map { "[0:\($0)]" }.joined(separator: "."))")
                }
                return Route(uid: uid, url: url, weight: Float(weight))
            }
        }
    }

    public init(samples: [[Route]]) {
        self.samples = samples
    }
}
