#if canImport(Glibc)
import Glibc
#endif
// Glibc's socket constants (SOCK_STREAM, SHUT_RDWR, ...) are owned by the C modules whose headers
// include <sys/socket.h> first; a whole-module (release) build finds them only through those.
import CCurl
import CMicroHTTPD

/// A raw socket call that failed.
public struct RawSocketError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The few raw TCP calls (IPv4) that byte-stream forwarding needs: the
/// relay, and the link emulator of the tests. HTTP goes through libmicrohttpd
/// and libcurl instead.
public enum RawSocket {
    public static func address(_ host: String, _ port: UInt16) throws(RawSocketError) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw RawSocketError("not an IPv4 address: \(host)") }
        return address
    }

    public static func listen(_ host: String, _ port: UInt16) throws(RawSocketError) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw error("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = try address(host, port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 512) == 0 else {
            let failure = error("bind \(host):\(port)")
            Glibc.close(fd)
            throw failure
        }
        return fd
    }

    /// A pending connection (close-on-exec), or -1.
    public static func accept(_ listener: Int32) -> Int32 {
        let fd = Glibc.accept(listener, nil, nil)
        if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return fd
    }

    public static func localPort(_ fd: Int32) throws(RawSocketError) -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let status = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard status == 0 else { throw error("getsockname") }
        return UInt16(bigEndian: address.sin_port)
    }

    /// `host` (an IPv4 address, or a name resolved to its first IPv4 address) and `port`.
    public static func resolve(_ host: String, _ port: UInt16) throws(RawSocketError) -> sockaddr_in {
        if let literal = try? address(host, port) { return literal }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list, let found = first.pointee.ai_addr else {
            throw RawSocketError("cannot resolve \(host) to an IPv4 address")
        }
        defer { freeaddrinfo(list) }
        var address = found.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
        address.sin_port = port.bigEndian
        return address
    }

    /// Connects to `host` (resolved by `resolve`) within 5 s.
    public static func connect(_ host: String, _ port: UInt16) throws(RawSocketError) -> Int32 {
        try connect(to: resolve(host, port))
    }

    /// Connects to `address` within 5 s.
    public static func connect(to address: sockaddr_in) throws(RawSocketError) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw error("socket") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = address
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard status == 0 else {
            let failure = error("connect \(addressText(address)):\(UInt16(bigEndian: address.sin_port))")
            Glibc.close(fd)
            throw failure
        }
        return fd
    }

    public static func addressText(_ address: sockaddr_in) -> String {
        var address = address
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        inet_ntop(AF_INET, &address.sin_addr, &text, socklen_t(text.count))
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Ends both directions, waking any thread blocked on the socket (it stays open).
    public static func shutdownBoth(_ fd: Int32) { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    /// Ends our sending direction: the peer reads the end of the stream.
    public static func shutdownWrite(_ fd: Int32) { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// Closes with a reset (RST) rather than an orderly end.
    public static func closeWithReset(_ fd: Int32) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        Glibc.close(fd)
    }

    /// Whether `fd` has something to read (or its end) within the time.
    public static func waitReadable(_ fd: Int32, milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, milliseconds) > 0
    }

    /// Sends all of `bytes` unless the peer is gone or `proceed` turns false.
    public static func sendAll(_ fd: Int32, _ bytes: [UInt8], while proceed: () -> Bool) -> Bool {
        var sent = 0
        while sent < bytes.count {
            guard proceed() else { return false }
            var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&entry, 1, 100) > 0 else { continue }
            if entry.revents & Int16(POLLERR | POLLHUP) != 0 { return false }
            let count = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if count < 0, errno == EAGAIN || errno == EINTR { continue }
            guard count > 0 else { return false }
            sent += count
        }
        return true
    }

    private static func error(_ what: String) -> RawSocketError {
        RawSocketError("\(what): \(String(cString: strerror(errno)))")
    }
}
