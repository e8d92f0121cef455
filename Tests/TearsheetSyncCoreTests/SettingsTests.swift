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
        ("TSYNC_LOG_LEVEL", "loud"), ("TSYNC_SECRET_KEY", "c2hvcnQ="), ("TSYNC_PREVIOUS_SECRET_KEY", "c2hvcnQ="), ("TSYNC_MANAGEMENT_URL", "ftp://x"),
    ])
    func malformedSettingIsNamedWithoutItsValue(_ setting: String, _ value: String) {
        let goodKey = String(repeating: "A", count: 43) + "="  // base64 of 32 zero bytes
        let settings = Settings(environment: ["TSYNC_SECRET_KEY": goodKey].merging([setting: value]) { $1 })
        #expect {
            switch setting {
            case "TSYNC_AMQP_URL": _ = try settings.amqp()
            case "TSYNC_DATABASE_URL": _ = try settings.databaseURL()
            case "TSYNC_LOG_FORMAT": _ = try settings.logFormat()
            case "TSYNC_LOG_LEVEL": _ = try settings.logLevel()
            case "TSYNC_SECRET_KEY", "TSYNC_PREVIOUS_SECRET_KEY": _ = try settings.sealingKeys()
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

    @Test func secretKeysAre32BytesAndThePreviousOneIsOptional() throws {
        let zeros = String(repeating: "A", count: 43) + "="  // base64 of 32 zero bytes
        let ones = String(repeating: "/", count: 42) + "8="  // base64 of 32 bytes of 0xff
        let alone = try Settings(environment: ["TSYNC_SECRET_KEY": zeros]).sealingKeys()
        #expect(alone.current == [UInt8](repeating: 0, count: 32) && alone.previous == nil)
        let rotating = try Settings(environment: ["TSYNC_SECRET_KEY": ones, "TSYNC_PREVIOUS_SECRET_KEY": zeros]).sealingKeys()
        #expect(rotating.current == [UInt8](repeating: 0xff, count: 32) && rotating.previous == [UInt8](repeating: 0, count: 32))
    }
}
