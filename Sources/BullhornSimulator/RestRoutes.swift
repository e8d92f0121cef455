import Foundation
import HTTPTypes
import Hummingbird

/// The REST data API: query, multi-get, to-many associations and entity creation, behind the
/// session check and the fault schedule.
struct RestRoutes: Sendable {
    let world: BullhornWorld
    static let maxCount = 500
    static let defaultCount = 15

    /// Session check, faults and counters around one REST call.
    func handle(_ request: Request, endpoint: String, _ body: ([String: String]) -> Response) async -> Response {
        let method = request.method == .get ? "GET" : (request.method == .put ? "PUT" : "POST")
        let key = endpoint.hasPrefix("PUT ") ? endpoint : "\(method) \(endpoint)"
        var parameters: [String: String] = [:]
        for (name, value) in request.uri.queryParameters { parameters[String(name)] = String(value) }
        if endpoint.hasPrefix("query/"), let condition = parameters["where"] { world.queryArrived(where: condition) }
        let (fault, corrupt, latency) = world.restCall(key)
        defer { world.restCallEnded() }
        if latency > .zero { try? await Task.sleep(for: latency) }
        let token = request.headers[HTTPField.Name("BhRestToken")!] ?? parameters["BhRestToken"]
        guard let token else {
            return SimulatorHTTP.error(.preconditionFailed, "BhRestToken is missing", key: "errors.preconditionFailed")
        }
        if request.uri.description.utf8.count > 7_500 {
            return SimulatorHTTP.error(.uriTooLong, "Request-URI too long")
        }
        switch fault {
        case .throttled:
            return SimulatorHTTP.error(.tooManyRequests, "Too many requests")
        case .capacity:
            return SimulatorHTTP.error(.internalServerError, "Server API capacity exceeded. Please try again later.")
        case .unavailable:
            return SimulatorHTTP.html(.serviceUnavailable, "<html><body>503 Service Temporarily Unavailable</body></html>")
        case nil:
            break
        }
        guard world.auth.use(session: token) == .valid else {
            world.served("401 session expired")
            return SimulatorHTTP.error(.unauthorized, "Bad 'BhRestToken' or timed-out.", key: "errors.authentication.invalidRestToken")
        }
        let response = body(parameters)
        if corrupt {
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"total\": 3, \"data\": [{\"id\": 1,")))
        }
        return response
    }

    private func paging(_ parameters: [String: String]) -> (start: Int, count: Int) {
        let start = max(Int(parameters["start"] ?? "") ?? 0, 0)
        let count = min(max(Int(parameters["count"] ?? "") ?? Self.defaultCount, 1), Self.maxCount)
        return (start, count)
    }

    private func page(_ records: [[String: Any]], total: Int, start: Int, showTotal: Bool) -> Response {
        var body: [String: Any] = ["start": start, "count": records.count, "data": records]
        if showTotal { body["total"] = total }
        return SimulatorHTTP.json(.ok, body)
    }

    func query(entity: String, _ parameters: [String: String]) -> Response {
        guard let whereText = parameters["where"] else { return SimulatorHTTP.error(.badRequest, "where is required") }
        let selection: FieldSelection
        let filter: JPQLWhere
        do {
            selection = try FieldSelection(parameters["fields"])
            filter = try JPQLWhere(whereText)
        } catch let error as FieldSelection.Invalid {
            return SimulatorHTTP.error(.badRequest, error.message)
        } catch let error as JPQLWhere.ParseError {
            return SimulatorHTTP.error(.badRequest, "Invalid query: \(error.message)")
        } catch {
            return SimulatorHTTP.error(.badRequest, "\(error)")
        }
        // Each record rendered in full only if it is on the page: a query over thousands of
        // records must not cost thousands of renderings (the fleet benchmarks run beside it).
        let records: [(id: Int64, flat: [String: JPQLWhere.Value], full: () -> [String: Any])]
        switch entity {
        case "Tearsheet": records = world.tearsheets.map { tearsheet in (tearsheet.id, EntityRendering.flat(tearsheet), { EntityRendering.full(tearsheet, world: world) }) }
        case "TearsheetMember":
            records = world.tearsheetMembers.map { entry in
                (entry.member.id, EntityRendering.flat(entry.member, tearsheetID: entry.tearsheetID), { EntityRendering.full(entry.member, tearsheetID: entry.tearsheetID) })
            }
        case "JobSubmission": records = world.jobSubmissions.map { submission in (submission.id, EntityRendering.flat(submission), { EntityRendering.full(submission) }) }
        default: return SimulatorHTTP.error(.badRequest, "query is not supported for \(entity) in this simulator")
        }
        do {
            var matching = try records.filter { try filter.matches($0.flat) }
            switch parameters["orderBy"] {
            case nil, "id", "+id": matching.sort { $0.id < $1.id }
            case "-id": matching.sort { $0.id > $1.id }
            default: return SimulatorHTTP.error(.badRequest, "orderBy \(parameters["orderBy"]!) is not supported by this simulator")
            }
            let (start, count) = paging(parameters)
            let slice = matching.dropFirst(start).prefix(count)
            return page(try slice.map { try selection.render($0.full()) }, total: matching.count, start: start, showTotal: parameters["showTotalMatched"] == "true")
        } catch let error as JPQLWhere.ParseError {
            return SimulatorHTTP.error(.badRequest, "Invalid query: \(error.message)")
        } catch let error as FieldSelection.Invalid {
            return SimulatorHTTP.error(.badRequest, error.message)
        } catch {
            return SimulatorHTTP.error(.badRequest, "\(error)")
        }
    }

    func multiGet(entity: String, ids idList: String, _ parameters: [String: String]) -> Response {
        let ids = idList.split(separator: ",").compactMap { Int64($0) }
        guard !ids.isEmpty, ids.count == idList.split(separator: ",").count else {
            return SimulatorHTTP.error(.badRequest, "bad entity id list")
        }
        do {
            let selection = try FieldSelection(parameters["fields"])
            let found: [[String: Any]]
            switch entity {
            case "Candidate": found = try world.candidates(ids).map { try selection.render(EntityRendering.full($0, world: world)) }
            case "Tearsheet": found = try ids.compactMap { world.tearsheet($0) }.map { try selection.render(EntityRendering.full($0, world: world)) }
            default: return SimulatorHTTP.error(.badRequest, "entity \(entity) is not supported by this simulator")
            }
            // Missing ids are dropped silently; 404 only when none exists.
            guard !found.isEmpty else { return SimulatorHTTP.error(.notFound, "Entity not found", key: "errors.entityNotFound") }
            // One id answers an object, several an array: a trap for clients.
            let data: Any = ids.count == 1 ? found[0] : found
            return SimulatorHTTP.json(.ok, ["data": data])
        } catch let error as FieldSelection.Invalid {
            return SimulatorHTTP.error(.badRequest, error.message)
        } catch {
            return SimulatorHTTP.error(.badRequest, "\(error)")
        }
    }

    func association(entity: String, id: String, association: String, _ parameters: [String: String]) -> Response {
        guard entity == "Tearsheet", let id = Int64(id), let tearsheet = world.tearsheet(id) else {
            return SimulatorHTTP.error(.notFound, "Entity not found", key: "errors.entityNotFound")
        }
        var ids: [Int64]
        switch association {
        case "candidates": ids = tearsheet.members.map(\.candidateID)
        case "jobOrders": ids = tearsheet.jobOrderIDs
        default: return SimulatorHTTP.error(.badRequest, "association \(association) is not supported by this simulator")
        }
        switch parameters["orderBy"] {
        case nil: break
        case "id", "+id": ids.sort()
        case "-id": ids.sort(by: >)
        default: return SimulatorHTTP.error(.badRequest, "orderBy \(parameters["orderBy"]!) is not supported by this simulator")
        }
        do {
            let selection = try FieldSelection(parameters["fields"])
            let (start, count) = paging(parameters)
            let records = try ids.dropFirst(start).prefix(count).map { try selection.render(["id": $0]) }
            return page(records, total: ids.count, start: start, showTotal: parameters["showTotalMatched"] == "true")
        } catch let error as FieldSelection.Invalid {
            return SimulatorHTTP.error(.badRequest, error.message)
        } catch {
            return SimulatorHTTP.error(.badRequest, "\(error)")
        }
    }

    func create(entity: String, body: Data) -> Response {
        guard entity == "JobSubmission" else {
            return SimulatorHTTP.error(.badRequest, "creating \(entity) is not supported by this simulator")
        }
        guard let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any],
            let candidate = ((json["candidate"] as? [String: Any])?["id"] as? NSNumber)?.int64Value,
            let job = ((json["jobOrder"] as? [String: Any])?["id"] as? NSNumber)?.int64Value
        else {
            return SimulatorHTTP.error(.badRequest, "candidate and jobOrder are required")
        }
        let status = json["status"] as? String ?? ""
        let source = json["source"] as? String ?? ""
        var errors: [[String: Any]] = []
        if status.isEmpty || status.count > 30 {
            errors.append(["propertyName": "status", "severity": "ERROR", "type": status.isEmpty ? "REQUIRED_FIELD" : "MAX_LENGTH"])
        }
        if source.count > 100 { errors.append(["propertyName": "source", "severity": "ERROR", "type": "MAX_LENGTH"]) }
        if let refusal = world.jobSubmissionRefusal(forCandidate: candidate), refusal != 400 {
            return SimulatorHTTP.error(HTTPResponse.Status(code: refusal), "error persisting an entity of type: JobSubmission")
        }
        if world.jobSubmissionRefusal(forCandidate: candidate) == 400 {
            errors.append(["propertyName": "candidate", "severity": "ERROR", "type": "INVALID_VALUE", "detailMessage": "candidate status does not allow submissions"])
        }
        guard errors.isEmpty else {
            return SimulatorHTTP.json(.badRequest, ["errorMessage": "error persisting an entity of type: JobSubmission", "errorCode": 400, "errors": errors, "entityName": "JobSubmission"])
        }
        guard let id = world.createJobSubmission(candidate: candidate, jobOrder: job, status: status, source: source) else {
            return SimulatorHTTP.error(.badRequest, "candidate or jobOrder does not exist")
        }
        return SimulatorHTTP.json(
            .ok,
            ["changedEntityType": "JobSubmission", "changedEntityId": id, "changeType": "INSERT",
             "data": ["candidate": ["id": candidate], "jobOrder": ["id": job], "status": status, "source": source]])
    }
}
