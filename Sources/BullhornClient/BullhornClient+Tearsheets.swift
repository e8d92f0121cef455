import Foundation

extension BullhornClient {
    /// Public, live tearsheets whose `dateLastModified` is after `since` (all of them when nil),
    /// in id order. Paged by id (`id > last`), which no concurrent insert can make skip a
    /// record; a page ends the sequence only when `total` says nothing remains.
    public func tearsheetsModified(since: Date?) -> BullhornPages<BullhornTearsheet> {
        var conditions = ["isPrivate = false", "isDeleted = false"]
        if let since { conditions.append("dateLastModified > \(since.bullhornMillis)") }
        return keysetQuery(entity: "Tearsheet", conditions: conditions, fields: TearsheetRecord.fields) { (record: TearsheetRecord) in
            (record.id, record.model)
        }
    }

    /// Members added to any tearsheet after `since`, in member id order: Bullhorn may not bump
    /// a tearsheet's `dateLastModified` when a member is added, so this is the second source.
    public func membersAdded(since: Date) -> BullhornPages<BullhornMemberAddition> {
        memberships(where: "dateAdded > \(since.bullhornMillis)")
    }

    /// The tearsheets a candidate is on, as their member records (private and deleted
    /// tearsheets included): for `trace`.
    public func memberships(ofCandidate candidateID: Int64) -> BullhornPages<BullhornMemberAddition> {
        memberships(where: "person.id = \(candidateID)")
    }

    private func memberships(where condition: String) -> BullhornPages<BullhornMemberAddition> {
        keysetQuery(entity: "TearsheetMember", conditions: [condition], fields: MemberRecord.fields) {
            (record: MemberRecord) in
            (
                record.id,
                BullhornMemberAddition(
                    memberID: record.id, tearsheetID: record.tearsheet.id, candidateID: record.candidateID,
                    dateAdded: Date(bullhornMillis: record.dateAdded))
            )
        }
    }

    /// Tearsheets by id (missing ones are left out), private and deleted ones included: the
    /// caller decides.
    public func tearsheets(ids: [Int64]) async throws -> [BullhornTearsheet] {
        try await multiGet(entity: "Tearsheet", ids: ids, fields: TearsheetRecord.fields) { (record: TearsheetRecord) in record.model }
    }

    /// Candidate ids on a tearsheet, through `query/TearsheetMember` paged by member id
    /// (`id > last`): a member removed while the pages are read shifts nothing, where offset
    /// paging (`start=`) of the association endpoint would skip the member after it (issue
    /// 11, finding 2). (The entity's `candidates` field is truncated to five.)
    public func tearsheetCandidateIDs(_ tearsheetID: Int64) -> BullhornPages<Int64> {
        keysetQuery(entity: "TearsheetMember", conditions: ["tearsheet.id = \(tearsheetID)"], fields: MemberRecord.fields) {
            (record: MemberRecord) in (record.id, record.candidateID)
        }.compactMap { $0 }
    }

    /// Candidate ids on several tearsheets in one keyset query (`tearsheet.id IN (…)`): small
    /// tearsheets share a page instead of a call each. By member id, the tearsheets mixed.
    public func tearsheetCandidateIDs(ofTearsheets tearsheetIDs: [Int64]) -> BullhornPages<(tearsheetID: Int64, candidateID: Int64)> {
        let list = tearsheetIDs.map(String.init).joined(separator: ",")
        return keysetQuery(entity: "TearsheetMember", conditions: ["tearsheet.id IN (\(list))"], fields: MemberRecord.fields) {
            (record: MemberRecord) in (record.id, record.candidateID.map { (record.tearsheet.id, $0) })
        }.compactMap { $0 }
    }

    /// Job order ids on a tearsheet, paged the same way.
    public func tearsheetJobOrderIDs(_ tearsheetID: Int64) -> BullhornPages<Int64> {
        associationIDs(tearsheetID: tearsheetID, association: "jobOrders")
    }

    /// Job order ids on a tearsheet: the embedded ones when complete, else paged.
    public func jobOrderIDs(of tearsheet: BullhornTearsheet) async throws -> [Int64] {
        if case .complete(let ids) = tearsheet.jobOrders { return ids }
        return try await tearsheetJobOrderIDs(tearsheet.id).collect()
    }

    private func associationIDs(tearsheetID: Int64, association: String) -> BullhornPages<Int64> {
        let endpoint = "GET entity/Tearsheet/\(association)"
        let pageSize = configuration.pageSize
        return BullhornPages(first: 0) { start in
            let page: Page<IDRef> = try await self.get(
                "entity/Tearsheet/\(tearsheetID)/\(association)",
                query: [("fields", "id"), ("orderBy", "id"), ("start", "\(start)"), ("count", "\(pageSize)"), ("showTotalMatched", "true")],
                endpoint: endpoint)
            guard let total = page.total else {
                throw BullhornError(.malformedResponse, endpoint: endpoint, "no total although showTotalMatched=true")
            }
            let next = start + Int64(page.data.count)
            // Done when the total is reached; an empty page before that is Bullhorn changing
            // under us (members removed mid-read) and also ends the read.
            return (page.data.map(\.id), page.data.isEmpty || next >= Int64(total) ? nil : next)
        }
    }

    /// `query/{entity}` paged by id: each page asks for `id > last` in id order.
    func keysetQuery<Record: Decodable & Sendable, Element: Sendable>(
        entity: String, conditions: [String], fields: String, _ transform: @escaping @Sendable (Record) -> (id: Int64, element: Element)
    ) -> BullhornPages<Element> {
        let endpoint = "GET query/\(entity)"
        let pageSize = configuration.pageSize
        return BullhornPages(first: 0) { lastID in
            let whereClause = (conditions + ["id > \(lastID)"]).joined(separator: " AND ")
            let page: Page<Record> = try await self.get(
                "query/\(entity)",
                query: [("where", whereClause), ("fields", fields), ("orderBy", "id"), ("count", "\(pageSize)"), ("showTotalMatched", "true")],
                endpoint: endpoint)
            guard let total = page.total else {
                throw BullhornError(.malformedResponse, endpoint: endpoint, "no total although showTotalMatched=true")
            }
            let converted = page.data.map(transform)
            guard let last = converted.last else { return ([], nil) }
            guard last.id > lastID else {
                throw BullhornError(.malformedResponse, endpoint: endpoint, "page does not advance past id \(lastID)")
            }
            // `total` counts what matched this page's where: all of it came back, or more remains.
            return (converted.map(\.element), converted.count >= total ? nil : last.id)
        }
    }

    /// `entity/{entity}/{id,id,…}` in chunks that keep the URL under Bullhorn's 7,500 characters.
    func multiGet<Record: Decodable, Element>(
        entity: String, ids: [Int64], fields: String, _ transform: (Record) -> Element
    ) async throws -> [Element] {
        var results: [Element] = []
        for chunk in Self.chunks(of: ids, maxCharacters: 6_000 - fields.utf8.count) {
            let path = "entity/\(entity)/\(chunk.map(String.init).joined(separator: ","))"
            do {
                let envelope: DataEnvelope<OneOrMany<Record>> = try await get(
                    path, query: [("fields", fields)], endpoint: "GET entity/\(entity)")
                results += envelope.data.values.map(transform)
            } catch let error as BullhornError where error.code == .notFound {
                continue  // none of this chunk exists
            }
        }
        return results
    }

    /// Splits ids so that each comma-joined chunk stays under `maxCharacters`.
    static func chunks(of ids: [Int64], maxCharacters: Int) -> [[Int64]] {
        var chunks: [[Int64]] = []
        var current: [Int64] = []
        var length = 0
        for id in ids {
            let added = String(id).utf8.count + 1
            if !current.isEmpty, length + added > maxCharacters {
                chunks.append(current)
                current = []
                length = 0
            }
            current.append(id)
            length += added
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks
    }
}
