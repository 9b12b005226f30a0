// Everything that imports Shared also sees SharedCore (HTTP, JSON, services, DHT client).
@_exported import SharedCore
