import BullhornSimulator
import Logging
import Testing

/// The log scan itself: a line with a secret fails its test (here, as a known issue).
@Suite struct SecretScanningTests {
    @Test func aSecretInALogLineFailsTheTestThatLoggedIt() {
        let logger = FleetFixture.quietLogger
        withKnownIssue("the scan must catch these") {
            logger.debug("login with \(SimulatedAuth.Account.standard.password)")
        }
        withKnownIssue {
            logger.trace("renewed", metadata: ["token": "bh12:0f8c1a2e-9d3b-4c5e-8f7a-1b2c3d4e5f60"])
        }
        logger.info("nothing secret: sim.api.user logged in")  // no issue: a user name is no secret
    }
}
