// A small service for the HTTP tests that need a real process (signals, exit codes).
import Shared
#if canImport(Glibc)
import Glibc
#endif

let options = ServiceOptions.parseOrExit(service: "http-fixture", specs: [])
let logger = (try? options.logger()) ?? Logger(service: "http-fixture")
var router = Router()
router.get("/sleep", sleepHandler)
router.get("/sleepers", sleepersHandler)
router.post("/echo") { request in .bytes(request.body, contentType: request.contentType ?? "application/octet-stream") }
let security: ServiceSecurity
do { security = try ServiceSecurity(options) } catch { print("http-fixture: \(error)"); exit(2) }
ServiceRunner.run(options, security: security, router: router, metrics: Metrics(namespace: "hivemind_fixture"), logger: logger)
