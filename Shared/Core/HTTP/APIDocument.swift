/// A service's OpenAPI document, served at `GET /openapi.json` and
/// `GET /openapi.yaml` so that a client (or a client generator) can fetch the
/// contract of the version it talks to. Each service's is bundled from
/// `openapi/` into a generated source by `make openapi` and compiled in:
/// a container has no checkout to read it from.
public struct APIDocument: Sendable {
    public let json: String
    public let yaml: String

    public init(json: String, yaml: String) {
        self.json = json
        self.yaml = yaml
    }
}

extension Router {
    /// Serves `document` at `GET /openapi.json` and `GET /openapi.yaml`
    /// (`text/yaml`, which browsers show and generators read as text).
    public mutating func serve(_ document: APIDocument) {
        get("/openapi.json") { _ in .text(document.json, contentType: "application/json") }
        get("/openapi.yaml") { _ in .text(document.yaml, contentType: "text/yaml; charset=utf-8") }
    }
}
