/// The parsed and fully validated header of a safetensors buffer.
///
/// Layout: 8 bytes little-endian header length `n`, `n` bytes of JSON
/// (`{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
/// "__metadata__": {"key": "value"}}`), then the data section, with offsets
/// relative to its start. Everything a reader will rely on is checked here,
/// before any tensor memory is allocated.
struct SafetensorsHeader {
    struct Entry {
        let name: String
        let dtype: DType
        let shape: [Int]
        let begin: Int
        let end: Int
    }

    /// Tensors in data-offset order.
    let entries: [Entry]
    let metadata: [String: String]
    /// Where the data section starts in the buffer.
    let dataStart: Int

    /// The largest header we accept: far below the reference's 100 MB, because
    /// every header comes from a peer and parsing costs CPU (a 20 MB header of
    /// empty tensors took 10 s). 4 MiB holds thousands of tensors' entries and
    /// the gateway's routing record of a large batch.
    static let maximumHeaderLength = 4 << 20
    /// The most tensors one payload may hold: a large model's state fits.
    static let maximumTensors = 4096

    init(_ buffer: UnsafeRawBufferPointer) throws(SafetensorsError) {
        guard buffer.count > 0 else {
            throw SafetensorsError(.truncated, "empty payload: a safetensors buffer starts with an 8-byte header length")
        }
        guard buffer.count >= 8 else {
            throw SafetensorsError(.truncated, "payload of \(buffer.count) bytes is shorter than the 8-byte header length")
        }
        let declared = buffer.loadUnaligned(as: UInt64.self).littleEndian
        let available = buffer.count - 8
        // Compare before converting or allocating: the length comes from the sender.
        guard declared <= UInt64(available) else {
            throw SafetensorsError(.truncated, "header length \(declared) runs past the end of the payload "
                + "(only \(available) bytes follow the 8-byte length)")
        }
        let headerLength = Int(declared)
        guard headerLength <= SafetensorsHeader.maximumHeaderLength else {
            throw SafetensorsError(.invalidHeader, "header length \(headerLength) exceeds the limit of \(SafetensorsHeader.maximumHeaderLength) bytes")
        }
        guard headerLength > 0 else {
            throw SafetensorsError(.invalidHeader, "header is empty; expected a JSON object")
        }
        let text = UnsafeRawBufferPointer(rebasing: buffer[8..<(8 + headerLength)])
        let json: JSON
        do { json = try JSON.parse(text) } catch { throw SafetensorsError(.invalidHeader, "header is not valid JSON: \(error)") }
        guard case .object(let members) = json else {
            throw SafetensorsError(.invalidHeader, "header must be a JSON object, got \(json.typeName)")
        }
        dataStart = 8 + headerLength
        let dataLength = buffer.count - dataStart

        guard members.count <= SafetensorsHeader.maximumTensors + 1 else {
            throw SafetensorsError(.invalidHeader, "the header lists \(members.count) entries; at most \(SafetensorsHeader.maximumTensors) tensors are accepted")
        }
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        entries.reserveCapacity(members.count)
        for (name, value) in members {
            if name == "__metadata__" {
                metadata = try SafetensorsHeader.parseMetadata(value)
            } else {
                entries.append(try SafetensorsHeader.parseEntry(name, value, dataLength: dataLength))
            }
        }
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        try SafetensorsHeader.checkLayout(entries, dataLength: dataLength)
        self.entries = entries
        self.metadata = metadata
    }

    private static func parseMetadata(_ value: JSON) throws(SafetensorsError) -> [String: String] {
        guard case .object(let members) = value else {
            throw SafetensorsError(.invalidMetadata, "__metadata__ must be an object of strings, got \(value.typeName)")
        }
        var metadata: [String: String] = [:]
        for (key, item) in members {
            guard case .string(let text) = item else {
                throw SafetensorsError(.invalidMetadata, "__metadata__ value for '\(key)' must be a string, got \(item.typeName)")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func parseEntry(_ name: String, _ value: JSON, dataLength: Int) throws(SafetensorsError) -> Entry {
        func fail(_ message: String) -> SafetensorsError { SafetensorsError(.invalidTensorEntry, "tensor '\(name)': \(message)") }
        guard case .object(let fields) = value else {
            throw fail("expected an object with dtype, shape and data_offsets, got \(value.typeName)")
        }
        guard case .string(let dtypeName)? = fields["dtype"] else {
            throw fail("dtype must be a string, got \(fields["dtype"]?.typeName ?? "nothing")")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw fail("unknown dtype '\(dtypeName)'; expected one of \(DType.allCases.map(\.name).joined(separator: ", "))")
        }
        guard case .array(let shapeItems)? = fields["shape"] else {
            throw fail("shape must be a list of non-negative integers, got \(fields["shape"]?.typeName ?? "nothing")")
        }
        var shape: [Int] = []
        for item in shapeItems {
            guard case .int(let dimension) = item, dimension >= 0 else {
                throw fail("shape must be a list of non-negative integers, got \(item.serialized()) in \(JSON.array(shapeItems).serialized())")
            }
            shape.append(dimension)
        }
        // Zero dimensions count as 1 in the bound, so no product of some of the dimensions overflows later.
        guard let elements = WireTensor.boundedElementCount(shape) else {
            throw fail("shape \(describe(shape)) has more elements than fit in memory (the product of its nonzero dimensions must be at most 2^48)")
        }
        let (byteCount, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw fail("shape \(describe(shape)) of \(dtype.name) has more bytes than fit in memory") }

        guard case .array(let offsets)? = fields["data_offsets"], offsets.count == 2,
              case .int(let begin) = offsets[0], case .int(let end) = offsets[1] else {
            throw fail("data_offsets must be a list of two integers [begin, end], got \(fields["data_offsets"]?.serialized() ?? "nothing")")
        }
        guard begin >= 0, end >= 0 else { throw fail("data_offsets [\(begin), \(end)] must not be negative") }
        guard end >= begin else { throw fail("data_offsets end \(end) is before begin \(begin)") }
        guard end <= dataLength else {
            throw SafetensorsError(.invalidOffsets, "tensor '\(name)': data_offsets [\(begin), \(end)] run past the end "
                + "of the data section (\(dataLength) bytes)")
        }
        guard end - begin == byteCount else {
            throw fail("data_offsets [\(begin), \(end)] span \(end - begin) bytes, but shape \(describe(shape)) of "
                + "\(dtype.name) needs \(elements) x \(dtype.byteSize) = \(byteCount) bytes")
        }
        return Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// Tensors must tile the data section exactly, as the reference reader demands: no overlaps, no gaps.
    private static func checkLayout(_ entries: [Entry], dataLength: Int) throws(SafetensorsError) {
        var position = 0
        var previous: Entry?
        for entry in entries {
            if entry.begin < position, let previous {
                throw SafetensorsError(.invalidOffsets, "tensors '\(previous.name)' [\(previous.begin), \(previous.end)] and "
                    + "'\(entry.name)' [\(entry.begin), \(entry.end)] overlap")
            }
            guard entry.begin == position else {
                throw SafetensorsError(.invalidOffsets, "tensor '\(entry.name)' starts at byte \(entry.begin) of the data section, "
                    + "expected \(position): tensor data must be contiguous, without gaps")
            }
            position = entry.end
            previous = entry
        }
        guard position == dataLength else {
            throw SafetensorsError(.invalidOffsets, "the data section has \(dataLength) bytes but the tensors cover \(position); "
                + "expected no trailing bytes")
        }
    }
}
