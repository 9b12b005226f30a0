// Typed shims over libmicrohttpd's variadic functions, which Swift cannot call.
#ifndef CMICROHTTPD_SHIM_H
#define CMICROHTTPD_SHIM_H
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <microhttpd.h>
#include <gnutls/gnutls.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/// Starts a daemon with an internal thread pool, a connection limit, a
/// per-connection timeout and memory limit; `MHD_start_daemon` is variadic,
/// so the options go in one `MHD_OPTION_ARRAY`. With a PEM `key` and
/// `certificate` it serves TLS; with `trust` (PEM roots) as well, clients are
/// asked for a certificate, which the handshake does not check (GnuTLS's
/// GNUTLS_CERT_REQUEST): the service decides what it is worth, per request.
static inline struct MHD_Daemon *cmhd_start_daemon(
    unsigned int flags, uint16_t port, const struct sockaddr *bind_addr,
    MHD_AccessHandlerCallback handler, void *handler_cls,
    MHD_RequestCompletedCallback completed, void *completed_cls,
    MHD_NotifyConnectionCallback notify, void *notify_cls,
    unsigned int thread_pool_size, unsigned int connection_limit, unsigned int per_ip_connection_limit,
    unsigned int connection_timeout_seconds, size_t connection_memory_limit,
    const char *key, const char *certificate, const char *trust) {
    struct MHD_OptionItem options[] = {
        { MHD_OPTION_SOCK_ADDR, 0, (void *)bind_addr },
        { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, completed_cls },
        { MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)notify, notify_cls },
        { MHD_OPTION_THREAD_POOL_SIZE, thread_pool_size, NULL },
        { MHD_OPTION_CONNECTION_LIMIT, connection_limit, NULL },
        { MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip_connection_limit, NULL },
        { MHD_OPTION_CONNECTION_TIMEOUT, connection_timeout_seconds, NULL },
        { MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)connection_memory_limit, NULL },
        { key ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, (void *)key },
        { key ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)certificate },
        { key && trust ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, (void *)trust },
        { MHD_OPTION_END, 0, NULL },
    };
    return MHD_start_daemon(flags | (key ? MHD_USE_TLS : 0), port, NULL, NULL, handler, handler_cls,
                            MHD_OPTION_ARRAY, options, MHD_OPTION_END);
}

/// The port the daemon listens on (useful after binding port 0).
static inline uint16_t cmhd_bound_port(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

/// The socket of a connection (-1 when unknown).
static inline int cmhd_connection_fd(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info ? info->connect_fd : -1;
}

/// A TLS connection's socket, whether its first bytes were looked at, and
/// whether its handshake was counted.
struct cmhd_tls_connection { int fd; int sniffed; int counted; };

/// GnuTLS's reads on a TLS connection. The first byte a TLS client sends is
/// 0x16 (a handshake record); anything else is a plain HTTP request sent to
/// a TLS port, which gets a plain HTTP 400 saying so instead of a dropped
/// connection (what is left of the request is read first, so that closing
/// does not reset the connection before the client reads the answer).
static ssize_t cmhd_tls_pull(gnutls_transport_ptr_t pointer, void *data, size_t size) {
    struct cmhd_tls_connection *state = pointer;
    ssize_t count = recv(state->fd, data, size, 0);
    if (count > 0 && !state->sniffed) {
        state->sniffed = 1;
        if (((const unsigned char *)data)[0] != 0x16) {
            static const char body[] = "{\"error\":{\"code\":\"https_required\",\"message\":\"this port speaks HTTPS (TLS) only, "
                "and the request came in plain HTTP: call https:// instead of http://\"}}";
            char scratch[4096], answer[512];
            for (int reads = 0; reads < 16 && recv(state->fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0; reads++) {}
            int length = snprintf(answer, sizeof answer, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                "Connection: close\r\nContent-Length: %zu\r\n\r\n%s", sizeof body - 1, body);
            if (send(state->fd, answer, (size_t)length, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0) shutdown(state->fd, SHUT_WR);
            errno = ECONNRESET;
            return -1;
        }
    }
    return count;
}

static int cmhd_tls_pull_timeout(gnutls_transport_ptr_t pointer, unsigned int milliseconds) {
    struct cmhd_tls_connection *state = pointer;
    struct pollfd entry = { .fd = state->fd, .events = POLLIN, .revents = 0 };
    return poll(&entry, 1, milliseconds == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)milliseconds);
}

/// A new key for TLS session tickets (a process's own, so that a client
/// reconnecting resumes its session instead of paying a whole handshake).
static inline gnutls_datum_t *cmhd_new_ticket_key(void) {
    gnutls_datum_t *key = calloc(1, sizeof *key);
    if (key && gnutls_session_ticket_key_generate(key) != GNUTLS_E_SUCCESS) { free(key); return NULL; }
    return key;
}

/// Wipes and frees a key from `cmhd_new_ticket_key` (once the daemon that used it has stopped).
static inline void cmhd_free_ticket_key(gnutls_datum_t *key) {
    if (!key) return;
    if (key->data) { gnutls_memset(key->data, 0, key->size); gnutls_free(key->data); }
    free(key);
}

/// Sets up a new TLS connection before its handshake (from the connection's
/// STARTED notification): reads go through `cmhd_tls_pull`, and session
/// tickets under `ticket_key` are issued. Returns the state to pass to
/// `cmhd_tls_connection_closed`, or NULL for a plain connection.
static inline void *cmhd_tls_connection_started(struct MHD_Connection *connection, const gnutls_datum_t *ticket_key) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!info || !info->tls_session) return NULL;
    gnutls_session_t session = (gnutls_session_t)info->tls_session;
    struct cmhd_tls_connection *state = calloc(1, sizeof *state);
    if (!state) return NULL;
    state->fd = cmhd_connection_fd(connection);
    // Writes keep libmicrohttpd's transport (the socket itself); reads see the state.
    gnutls_transport_set_ptr2(session, state, (gnutls_transport_ptr_t)(intptr_t)state->fd);
    gnutls_transport_set_pull_function(session, cmhd_tls_pull);
    gnutls_transport_set_pull_timeout_function(session, cmhd_tls_pull_timeout);
    if (ticket_key) gnutls_session_ticket_enable_server(session, ticket_key);
    return state;
}

static inline void cmhd_tls_connection_closed(void *state) { free(state); }

/// At a TLS connection's first request: 1 if its session was resumed, 0 if
/// it took a full handshake; -1 at later requests and on plain connections.
static inline int cmhd_tls_first_request(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *context = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    const union MHD_ConnectionInfo *session = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!context || !context->socket_context || !session || !session->tls_session) return -1;
    struct cmhd_tls_connection *state = context->socket_context;
    if (state->counted) return -1;
    state->counted = 1;
    return gnutls_session_is_resumed((gnutls_session_t)session->tls_session) ? 1 : 0;
}

/// The DER of the certificate the client presented on a TLS connection
/// (valid while the connection lasts), or NULL with `*size` 0.
static inline const unsigned char *cmhd_client_certificate(struct MHD_Connection *connection, size_t *size) {
    *size = 0;
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!info || !info->tls_session) return NULL;
    unsigned int count = 0;
    const gnutls_datum_t *certificates = gnutls_certificate_get_peers((gnutls_session_t)info->tls_session, &count);
    if (!certificates || count == 0) return NULL;
    *size = certificates[0].size;
    return certificates[0].data;
}

/// The client's address for a connection, as text ("" when unknown).
static inline void cmhd_client_address(struct MHD_Connection *connection, char *buffer, socklen_t length) {
    buffer[0] = 0;
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!info || !info->client_addr) return;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buffer, length);
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buffer, length);
    }
}
#endif
