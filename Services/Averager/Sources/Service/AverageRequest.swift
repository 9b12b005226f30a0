import Shared

/// What a trainer submits to `POST /v1/average` (or `POST /v1/rounds`).
///
/// Over HTTP: the body is a safetensors file of float tensors (F32, F16,
/// BF16 or F64; a compressed `TensorBundle` works too); `__metadata__["gather"]`
/// may hold any JSON to share with the group; the query names `prefix`
/// (required), `weight` (default 1), `timeout` (seconds the whole call may
/// take, from 1 ms to an hour), `codec` (compression of the parts this
/// averager sends, default none) and `run` (see `run`).
public struct AverageRequest: Sendable {
    /// The run's name; peers average with peers of the same prefix.
    public var prefix: String
    /// The tensors, in the order the trainer sent them, with their dtypes.
    public var tensors: [(name: String, tensor: WireTensor)]
    /// This peer's weight in the average (ignored by an auxiliary).
    public var weight: Double
    /// Seconds the whole call may take from its arrival (nil: the averager's default).
    public var timeout: Double?
    /// Compression of the parts this averager sends and of the averages it asks for.
    public var codec: CompressionCodec
    /// What this trainer shares with its group (any JSON).
    public var metadata: JSON
    /// A collaborative run on this averager whose trainers are the only
    /// partners to expect (e.g. a trainer's final averaging after it left the
    /// run): with no trainer left in it and nobody looking for a group under
    /// the prefix, the call answers 504 `no_group_found` at once.
    public var run: String?

    /// A request with explicit values.
    public init(prefix: String, tensors: [(name: String, tensor: WireTensor)], weight: Double = 1, timeout: Double? = nil,
                codec: CompressionCodec = .none, metadata: JSON = .null, run: String? = nil) {
        self.prefix = prefix
        self.tensors = tensors
        self.weight = weight
        self.timeout = timeout
        self.codec = codec
        self.metadata = metadata
        self.run = run
    }

    /// Reads and checks an HTTP request.
    /// - Throws: `AveragerError`: 400 for a malformed body or query, 422 for
    ///   unusable values (no tensors, integer dtypes, negative weight); 400 for a timeout out of bounds.
    public init(http request: HTTPRequest) throws(AveragerError) {
        let prefix = try request.prefix()
        let weight = try Self.number(request.query["weight"], "weight", default: 1)
        guard weight.isFinite, weight >= 0 else {
            throw AveragerError(.unprocessable, "weight must be a finite number >= 0, got \(request.query["weight"] ?? "")")
        }
        let timeout = try request.query["timeout"].map { text throws(AveragerError) in try Self.timeout(text) }
        let codec = try request.codec()
        let (tensors, metadata) = try Self.readTensors(request.body)
        var gathered: JSON = .null
        if let text = metadata["gather"] {
            do { gathered = try JSON.parse(text) } catch {
                throw AveragerError(.badRequest, "__metadata__['gather'] must be JSON text: \(error)")
            }
        }
        let run = request.query["run"]
        if let run { try RunSettings.validate(name: run, "run") }
        self.init(prefix: prefix, tensors: tensors, weight: weight, timeout: timeout, codec: codec, metadata: gathered, run: run)
    }

    /// The longest `timeout` a call takes: an hour.
    static let maxTimeout = 3600.0

    /// A `timeout` query parameter: seconds from 1 ms to an hour, else 400 naming the bounds.
    static func timeout(_ text: String) throws(AveragerError) -> Double {
        do throws(DurationError) { return try DurationLimits.parse(text, "query parameter 'timeout'", in: DurationLimits.minimumTimeout...maxTimeout) } catch {
            throw AveragerError(.badRequest, error.message)
        }
    }

    private static func number(_ text: String?, _ name: String, default value: Double) throws(AveragerError) -> Double {
        guard let text else { return value }
        guard let number = Double(text) else { throw AveragerError(.badRequest, "query parameter '\(name)' must be a number, got '\(text)'") }
        return number
    }

    /// The tensors of a safetensors body (decompressing a compressed bundle) and its metadata.
    static func readTensors(_ body: [UInt8]) throws(AveragerError) -> ([(name: String, tensor: WireTensor)], [String: String]) {
        let payload: SafetensorsPayload
        do { payload = try Safetensors.decode(body) } catch {
            throw AveragerError(.badRequest, "the body must be a safetensors file of the tensors to average: \(error.message)")
        }
        var tensors = payload.tensors
        var metadata = payload.metadata
        if metadata.keys.contains(where: { $0.hasPrefix("compression") }) {
            do throws(SafetensorsError) {
                let bundle = try TensorBundle.decode(body)
                tensors = []
                for (name, tensor) in bundle.tensors { tensors.append((name, try WireTensor(tensor))) }
                metadata = bundle.metadata
            } catch {
                throw AveragerError(.badRequest, "the compressed tensors cannot be read: \(error.message)")
            }
        }
        guard !tensors.isEmpty else { throw AveragerError(.unprocessable, "the body holds no tensors; send at least one float tensor") }
        if let integer = tensors.first(where: { !$0.tensor.dtype.isFloatingPoint }) {
            throw AveragerError(.unprocessable, "tensor '\(integer.name)' has dtype \(integer.tensor.dtype.name); only float tensors "
                + "(F32, F16, BF16, F64) can be averaged")
        }
        return (tensors, metadata)
    }
}

/// What `POST /v1/average` answers: the averaged tensors in the request's
/// order and dtypes, and the round's record.
public struct AverageResult: Sendable {
    /// The averaged tensors (none for an auxiliary, which sends nothing).
    public let tensors: [(name: String, tensor: WireTensor)]
    /// What happened.
    public let record: RoundRecord

    /// A safetensors file with the record as JSON in `__metadata__["round"]`.
    public func encoded() throws(SafetensorsError) -> [UInt8] {
        try Safetensors.encode(tensors, metadata: ["round": record.json.serialized()])
    }
}
