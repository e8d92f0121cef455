import Testing

@testable import TearsheetSyncCore

@Suite struct SettingsTests {
    @Test func defaultsApplyWhenUnset() throws {
        let settings = Settings(environment: [:])
        #expect(try settings.amqp().host == "127.0.0.1")
        #expect(try settings.logFormat() == .text)
        #expect(try settings.logLevel() == .info)
        #expect(settings.topologyPath() == "topology.json")
        #expect(try settings.managementURL().port == 15672)
    }

    @Test func flagsOverrideTheEnvironment() throws {
        let settings = Settings(
            environment: ["TSYNC_AMQP_URL": "amqp://a:b@env-host/%2F"],
            overrides: ["TSYNC_AMQP_URL": "amqp://a:b@flag-host/%2F", "TSYNC_LOG_LEVEL": nil])
        #expect(try settings.amqp().host == "flag-host")
    }

    @Test(arguments: [
        ("TSYNC_AMQP_URL", "nonsense"), ("TSYNC_DATABASE_URL", "bogus=1"), ("TSYNC_LOG_FORMAT", "xml"),
        ("TSYNC_LOG_LEVEL", "loud"), ("TSYNC_SECRET_KEY", "c2hvcnQ="), ("TSYNC_MANAGEMENT_URL", "ftp://x"),
    ])
    func malformedSettingIsNamedWithoutItsValue(_ setting: String, _ value: String) {
        let settings = Settings(environment: [setting: value])
        #expect {
            switch setting {
            case "TSYNC_AMQP_URL": _ = try settings.amqp()
            case "TSYNC_DATABASE_URL": _ = try settings.databaseURL()
            case "TSYNC_LOG_FORMAT": _ = try settings.logFormat()
            case "TSYNC_LOG_LEVEL": _ = try settings.logLevel()
            case "TSYNC_SECRET_KEY": _ = try settings.secretKey()
            default: _ = try settings.managementURL()
            }
        } throws: { error in
            let error = error as? ConfigurationError
            return error?.setting == setting && error?.description.contains(value) == false
        }
    }

    @Test func missingDatabaseURLIsNamed() {
        #expect(throws: ConfigurationError.self) { try Settings(environment: [:]).databaseURL() }
    }

    @Test func secretKeyMustBe32Bytes() throws {
        let key = String(repeating: "A", count: 43) + "="  // base64 of 32 zero bytes
        #expect(try Settings(environment: ["TSYNC_SECRET_KEY": key]).secretKey().count == 32)
    }
}
