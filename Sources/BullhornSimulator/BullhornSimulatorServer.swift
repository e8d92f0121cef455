import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The simulated Bullhorn over HTTP on 127.0.0.1: loginInfo, OAuth, REST login and the REST
/// data API under `/rest-services/{corpToken}/`. Used by the tests, the demo and
/// `tearsheet-sync simulate`.
public struct BullhornSimulatorServer: Sendable {
    public static let corpToken = "sim7"
    public let world: BullhornWorld

    public init(world: BullhornWorld) {
        self.world = world
    }

    /// Builds the application; `onRunning` receives the base URL once the port is bound.
    public func application(port: Int = 0, onRunning: @escaping @Sendable (String) async -> Void = { _ in }) -> some ApplicationProtocol {
        var logger = Logger(label: "bullhorn-simulator")
        logger.logLevel = .warning
        return Application(
            router: router(), configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { channel in await onRunning("http://127.0.0.1:\(channel.localAddress?.port ?? port)") },
            logger: logger)
    }

    /// Runs the simulator for the duration of `body`, which receives its base URL
    /// (`http://127.0.0.1:PORT`; the login-info URL is `BASE/rest-services/loginInfo`).
    /// Ends with a graceful shutdown, which closes idle keep-alive connections at once
    /// (cancelling the server instead can leave it waiting on them).
    public func run<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        let (urls, sink) = AsyncStream<String>.makeStream()
        let app = application { url in
            sink.yield(url)
            sink.finish()
        }
        var logger = Logger(label: "bullhorn-simulator")
        logger.logLevel = .warning
        let services = ServiceGroup(configuration: .init(services: [app], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            var iterator = urls.makeAsyncIterator()
            guard let base = await iterator.next() else { throw CancellationError() }
            let result: Result<T, any Error>
            do {
                result = .success(try await body(base))
            } catch {
                result = .failure(error)
            }
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
            return try result.get()
        }
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        let auth = AuthRoutes(world: world)
        router.get("/rest-services/loginInfo") { request, _ in auth.loginInfo(request) }
        router.get("/oauth/authorize") { request, _ in auth.authorize(request) }
        router.post("/oauth/token") { request, _ in try await auth.token(request) }
        router.post("/rest-services/login") { request, _ in try await auth.restLogin(request) }
        router.get("/rest-services/login") { request, _ in try await auth.restLogin(request) }

        let rest = RestRoutes(world: world)
        let prefix = "/rest-services/\(Self.corpToken)"
        router.get("\(prefix)/ping") { request, _ in
            await rest.handle(request, endpoint: "ping") { _ in
                SimulatorHTTP.json(.ok, ["sessionExpires": world.nowMillis + 600_000])
            }
        }
        router.get("\(prefix)/query/:entity") { request, context in
            let entity = context.parameters.get("entity") ?? ""
            return await rest.handle(request, endpoint: "query/\(entity)") { parameters in rest.query(entity: entity, parameters) }
        }
        router.post("\(prefix)/query/:entity") { request, context in
            let entity = context.parameters.get("entity") ?? ""
            let body = try await request.body.collect(upTo: 1 << 20)
            let json = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
            return await rest.handle(request, endpoint: "query/\(entity)") { parameters in
                var merged = parameters
                for (key, value) in json { merged[key] = "\(value)" }
                return rest.query(entity: entity, merged)
            }
        }
        router.get("\(prefix)/entity/:entity/:ids") { request, context in
            let entity = context.parameters.get("entity") ?? ""
            let ids = context.parameters.get("ids") ?? ""
            return await rest.handle(request, endpoint: "entity/\(entity)") { parameters in rest.multiGet(entity: entity, ids: ids, parameters) }
        }
        router.get("\(prefix)/entity/:entity/:ids/:association") { request, context in
            let entity = context.parameters.get("entity") ?? ""
            let id = context.parameters.get("ids") ?? ""
            let association = context.parameters.get("association") ?? ""
            return await rest.handle(request, endpoint: "entity/\(entity)/\(association)") { parameters in
                rest.association(entity: entity, id: id, association: association, parameters)
            }
        }
        router.put("\(prefix)/entity/:entity") { request, context in
            let entity = context.parameters.get("entity") ?? ""
            let body = try await request.body.collect(upTo: 1 << 20)
            let data = Data(buffer: body)
            // A write Bullhorn sits on past the client's deadline, then applies.
            if let delay = world.takeLateWrite() { try? await Task.sleep(for: delay) }
            return await rest.handle(request, endpoint: "PUT entity/\(entity)") { _ in rest.create(entity: entity, body: data) }
        }
        return router
    }
}
