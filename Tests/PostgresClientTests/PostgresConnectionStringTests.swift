import PostgresClient
import Testing

/// A mistyped database URL is reported with libpq's reason, and never with the password that
/// libpq quotes around the error (issue 11, finding 7).
@Suite struct PostgresConnectionStringTests {
    static let malformed = [
        "postgresql://tsync:s3cr3t-pw@[db.internal/tsync",  // libpq quotes the whole URI
        "postgresql://tsync:s3cr3t%zz@db.internal/tsync",  // libpq quotes the bad token: the password
        "host=db.internal password='s3cr3t-pw",
        "host=db.internal password=s3cr3t pw dbname=tsync",  // a space: libpq quotes the second half
    ]

    @Test(arguments: malformed) func theReasonIsGivenWithoutThePassword(url: String) {
        do {
            try PostgresConnectionString.validate(url)
            Issue.record("\(url.count)-character URL accepted")
        } catch {
            let message = "\(error)"
            #expect(message.contains("not a PostgreSQL URI or conninfo string"))
            #expect(!message.contains("s3cr3t") && !message.contains("pw"), "\(message)")
        }
    }

    @Test func whatIsWrongStaysReadable() {
        #expect(throws: PostgresError.self) { try PostgresConnectionString.validate("host=db.internal bogus") }
        do {
            try PostgresConnectionString.validate("host=db.internal bogus")
        } catch {
            #expect("\(error)".contains(#"missing "=" after "…""#), "\(error)")
        }
        #expect(throws: Never.self) { try PostgresConnectionString.validate("postgresql://tsync:s3cr3t@db.internal:5432/tsync?sslmode=require") }
    }
}
