#if canImport(Glibc)
import Glibc
#endif
import Shared

/// A plain TCP connection for attack tests: bound to a chosen source address
/// (loopback has all of 127.0.0.0/8, so one test can be several clients), with
/// bytes written exactly as the test says, however slowly or wrongly.
public final class RawConnection: @unchecked Sendable {
    // Sendable: used by one task at a time.
    public let descriptor: Int32

    /// Connects to `host:port` from `source` (an IPv4 address); throws if the connect fails.
    public init(host: String = "127.0.0.1", port: Int, from source: String = "127.0.0.1") throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ServiceProcessError("socket() failed") }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, source, &local.sin_addr)
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &remote.sin_addr)
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        let connected = withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, connected == 0 else {
            close(descriptor)
            throw ServiceProcessError("cannot connect from \(source) to \(host):\(port): errno \(errno)")
        }
    }

    deinit { close(descriptor) }

    /// Writes all of `text`; false once the server has closed the connection.
    @discardableResult
    public func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Reads until the server closes the connection or `seconds` pass; returns
    /// what arrived. Never blocks a thread: the cooperative pool has only as many
    /// threads as cores, and the servers under test need them.
    public func receive(for seconds: Double) async -> (bytes: [UInt8], closed: Bool) {
        var received: [UInt8] = []
        let deadline = Clock.now + seconds
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Clock.now < deadline {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 0) > 0 else {
                try? await Task.sleep(for: .milliseconds(10))
                continue
            }
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count <= 0 { return (received, true) }
            received += buffer[..<count]
        }
        return (received, false)
    }

    /// True once the server has closed the connection (reads end of file or an error at once).
    public var isClosed: Bool {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 0) > 0 else { return false }
        var byte: UInt8 = 0
        return recv(descriptor, &byte, 1, Int32(MSG_PEEK)) <= 0
    }
}
