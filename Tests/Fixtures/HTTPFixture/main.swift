// A small service for the HTTP tests that need a real process (signals, exit codes).
import Shared

let options = ServiceOptions.parseOrExit(service: "http-fixture", specs: [])
let logger = (try? options.logger()) ?? Logger(service: "http-fixture")
var router = Router()
router.get("/sleep", sleepHandler)
router.get("/sleepers", sleepersHandler)
router.post("/echo") { request in .bytes(request.body, contentType: request.contentType ?? "application/octet-stream") }
ServiceRunner.run(options, router: router, metrics: Metrics(namespace: "hivemind_fixture"), logger: logger)
