/// Records that arrive page by page, fetched only as the consumer reaches them: one page in
/// memory at a time, however large the result.
public struct BullhornPages<Element: Sendable>: AsyncSequence, Sendable {
    /// Fetches the page at `cursor`; returns its records and the next cursor (nil: last page).
    typealias Fetch = @Sendable (_ cursor: Int64) async throws -> (records: [Element], next: Int64?)

    let first: Int64
    let fetch: Fetch

    /// Record by record, over the pages.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var pages: PageIterator
        var buffer: [Element] = []
        var index = 0

        public mutating func next() async throws -> Element? {
            while index == buffer.count {
                guard let page = try await pages.next() else { return nil }
                buffer = page
                index = 0
            }
            defer { index += 1 }
            return buffer[index]
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(pages: makePageIterator())
    }

    /// Reads page by page: `next()` is the next page's records (possibly none), nil after the last.
    public struct PageIterator {
        var cursor: Int64?
        let fetch: Fetch

        /// True once the last page was read: `next()` returns nil.
        public var isFinished: Bool { cursor == nil }

        public mutating func next() async throws -> [Element]? {
            guard let current = cursor else { return nil }
            let page = try await fetch(current)
            cursor = page.next
            return page.records
        }
    }

    public func makePageIterator() -> PageIterator {
        PageIterator(cursor: first, fetch: fetch)
    }

    /// The same pages with each element transformed, and the nils left out.
    func compactMap<T: Sendable>(_ transform: @escaping @Sendable (Element) -> T?) -> BullhornPages<T> {
        let fetch = fetch
        return BullhornPages<T>(first: first) { cursor in
            let page = try await fetch(cursor)
            return (page.records.compactMap(transform), page.next)
        }
    }

    /// Every element, for callers that know the result is small.
    public func collect() async throws -> [Element] {
        var all: [Element] = []
        for try await element in self { all.append(element) }
        return all
    }
}
