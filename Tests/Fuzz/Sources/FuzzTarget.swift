#if canImport(Glibc)
import Glibc
#endif

/// One fuzz target: a parser a peer can reach, driven with arbitrary bytes. It must never crash,
/// leak or hang, and it checks properties of what it accepts (round trips, agreement between two
/// readers of the same format) with `fuzzCheck`, so a wrong answer is a crash too.
struct FuzzTarget: Sendable {
    /// The name on the command line and of its seed folder, `Tests/Fuzz/Corpus/<name>`.
    let name: String
    /// One line on what it drives.
    let about: String
    /// Valid (and a few nearly valid) inputs for libFuzzer to start from, by file name.
    let seeds: @Sendable () -> [(name: String, bytes: [UInt8])]
    /// Runs one input.
    let run: @Sendable (UnsafeRawBufferPointer) -> Void

    /// Every target, in the order `make fuzz` runs them.
    static let all: [FuzzTarget] = [
        .safetensors, .bundle, .codecs, .json, .router, .range, .dhtMessages, .dhtRecords,
        .routingRecord, .routingSeal, .egress, .join, .part, .checkpoint, .expertHost,
    ]

    /// Writes the seeds into `folder` (created if missing).
    func writeSeeds(to folder: String) -> Bool {
        mkdir(folder, 0o755)
        for seed in seeds() {
            guard let file = fopen("\(folder)/\(seed.name)", "wb") else {
                printError("cannot write \(folder)/\(seed.name)")
                return false
            }
            _ = seed.bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            fclose(file)
        }
        return true
    }
}

/// Stops the run with a message when a property does not hold; libFuzzer saves the input as a crash.
func fuzzCheck(_ condition: Bool, _ message: @autoclosure () -> String) {
    guard !condition else { return }
    printError("fuzz check failed: \(message())")
    abort()
}

/// Writes a line to standard error (unbuffered, so it is out before an abort).
func printError(_ text: String) {
    var line = text.hasSuffix("\n") ? text : text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// Reads structured values from the fuzzer's bytes, as LLVM's FuzzedDataProvider does: every read
/// succeeds, giving zeros once the bytes run out, so each byte the fuzzer flips changes one choice.
struct FuzzInput {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Whether unread bytes remain.
    var isEmpty: Bool { position >= bytes.count }

    mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func bool() -> Bool { byte() & 1 == 1 }

    /// A number in `range`, from one byte for small ranges and up to eight for large ones.
    mutating func int(in range: ClosedRange<Int>) -> Int {
        let span = UInt64(bitPattern: Int64(range.upperBound &- range.lowerBound))
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while shift < 64 && (span >> shift) > 0 {
            value |= UInt64(byte()) << shift
            shift += 8
        }
        let offset = span == .max ? value : value % (span + 1)
        return range.lowerBound &+ Int(truncatingIfNeeded: offset)
    }

    /// One of `choices` (which must not be empty).
    mutating func pick<T>(_ choices: [T]) -> T { choices[int(in: 0...(choices.count - 1))] }

    /// `count` bytes (zeros past the end).
    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in byte() }
    }

    /// A length-prefixed string of at most `maxBytes` UTF-8 bytes (invalid sequences repaired).
    mutating func text(maxBytes: Int = 64) -> String {
        String(decoding: bytes(int(in: 0...maxBytes)), as: UTF8.self)
    }

    /// Like `text`, without NUL bytes: what arrives as a C string (libmicrohttpd's method, path, headers and query).
    mutating func cString(maxBytes: Int = 64) -> String {
        String(decoding: bytes(int(in: 0...maxBytes)).filter { $0 != 0 }, as: UTF8.self)
    }

    /// Everything not read yet.
    mutating func rest() -> [UInt8] {
        defer { position = bytes.count }
        return position < bytes.count ? Array(bytes[position...]) : []
    }
}

extension Array where Element == UInt8 {
    /// The UTF-8 bytes of a seed written as text.
    init(seed text: String) { self = Array(text.utf8) }
}
