#if canImport(Glibc)
import Glibc
#endif

/// Small files a service reads at start or watches (keys, certificates, the
/// revocation list), without Foundation: read whole up to a limit, created
/// with a mode and never over an existing file.
public enum TextFile {
    /// The file's text, at most `limit` bytes (a larger file is refused, not cut).
    public static func read(_ path: String, limit: Int = 1 << 20) -> Result<String, TextFileError> {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            return .failure(TextFileError(String(cString: strerror(errno)), missing: errno == ENOENT))
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let count = Glibc.read(descriptor, &buffer, buffer.count)
            if count < 0 { return .failure(TextFileError(String(cString: strerror(errno)))) }
            if count == 0 { break }
            bytes += buffer[..<count]
            if bytes.count > limit { return .failure(TextFileError("it is larger than \(limit) bytes")) }
        }
        return .success(String(decoding: bytes, as: UTF8.self))
    }

    /// Creates `path` with `contents` and `mode`; fails if it exists.
    /// - Returns: nil on success, else why not.
    public static func create(_ path: String, contents: String, mode: mode_t = 0o600) -> String? {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { return String(cString: strerror(errno)) }
        defer { close(descriptor) }
        let bytes = Array(contents.utf8)
        guard write(descriptor, bytes, bytes.count) == bytes.count else { return String(cString: strerror(errno)) }
        return nil
    }

    /// When the file last changed (seconds since the epoch), or nil if it cannot be read.
    public static func modificationTime(_ path: String) -> Double? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
    }
}

/// Why a file could not be read.
public struct TextFileError: Error, CustomStringConvertible, Sendable {
    public let message: String
    /// The file does not exist.
    public let missing: Bool
    public init(_ message: String, missing: Bool = false) {
        self.message = message
        self.missing = missing
    }
    public var description: String { message }
}
