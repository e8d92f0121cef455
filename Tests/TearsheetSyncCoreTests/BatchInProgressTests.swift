import AMQPClient
import BullhornClient
import Foundation
import Testing

@testable import TearsheetSyncCore

/// The bookkeeping of one batch's settlement between its attempts.
@Suite struct BatchInProgressTests {
    private func delivery(_ tag: UInt64, integration: String = "acme", campaign: Int64 = 7, candidate: Int64) throws -> HeldDelivery {
        let pair = PairMessage(integrationId: integration, campaignId: campaign, atsCandidateId: candidate, atsJobId: 55, tearsheetId: 9)
        return HeldDelivery(AMQPDelivery(deliveryTag: tag, message: pair.amqpMessage(at: Date())))
    }

    private func key(_ candidate: Int64) -> PairKey { PairKey(campaignID: 7, candidateID: candidate) }

    @Test func messagesThatAreNotThisSessionsPairsAreDeadLettersAndAPairDeliveredTwiceWaitsOnce() throws {
        let junk = HeldDelivery(AMQPDelivery(deliveryTag: 1, message: AMQPMessage(body: Array("nope".utf8))))
        let batch = [junk, try delivery(2, candidate: 1), try delivery(3, candidate: 1), try delivery(4, integration: "other", candidate: 2)]
        let progress = BatchInProgress(batch, integrationID: "acme")
        #expect(progress.waitingPairs == [key(1)])
        #expect(progress.deadLetters.map(\.0.deliveryTag) == [1, 4])
        #expect(progress.deadLetters[1].1 == "pair of integration other in the session of acme")
        #expect(!progress.isSettled)
    }

    @Test func anOutcomeSettlesAddedAndSkippedPairsAndDeadLettersEveryDeliveryOfARefusedOne() throws {
        let batch = [try delivery(1, candidate: 1), try delivery(2, candidate: 2), try delivery(3, candidate: 3), try delivery(4, candidate: 3)]
        var progress = BatchInProgress(batch, integrationID: "acme")
        var outcome = PairBatchOutcome()
        outcome.added = [key(1)]
        outcome.alreadyOnCampaign = [key(2)]
        outcome.deadLetters = [(key(3), "candidate 3 does not exist in Bullhorn")]
        progress.absorb(outcome, pairAttempts: 3, at: Date())
        #expect(progress.isSettled)
        #expect(progress.deadLetters.map(\.0.deliveryTag).sorted() == [3, 4])
        #expect(progress.outcomes.added == [key(1)] && progress.outcomes.alreadyOnCampaign == [key(2)])
    }

    @Test func aPairWhoseStepKeepsFailingIsGivenUpAfterItsAttemptsWithTheLastError() throws {
        var progress = BatchInProgress([try delivery(1, candidate: 1), try delivery(2, candidate: 2)], integrationID: "acme")
        var outcome = PairBatchOutcome()
        outcome.retry = [(key(1), BullhornError(.throttled, endpoint: "PUT entity/JobSubmission", "429"))]
        outcome.added = [key(2)]
        progress.absorb(outcome, pairAttempts: 2, at: Date())
        #expect(progress.waitingPairs == [key(1)], "one failed attempt: it waits")
        outcome.added = []
        progress.absorb(outcome, pairAttempts: 2, at: Date())
        #expect(progress.isSettled)
        #expect(progress.deadLetters.count == 1)
        #expect(progress.deadLetters[0].1.hasPrefix("gave up after 2 attempts: "))
    }

    @Test func pairsOnlyDeferredForTheirGraceAreTakenOutWhole() throws {
        var progress = BatchInProgress([try delivery(1, candidate: 1), try delivery(2, candidate: 1)], integrationID: "acme")
        var deferred = PairBatchOutcome()
        deferred.deferred = [key(1)]
        progress.absorb(deferred, pairAttempts: 2, at: Date())
        #expect(!progress.onlyDeferred(for: .seconds(60)), "not for a minute yet")
        #expect(progress.onlyDeferred(for: .zero))
        var failed = PairBatchOutcome()
        failed.retry = [(key(1), BullhornError(.transport, endpoint: "PUT entity/JobSubmission", "slow"))]
        progress.absorb(failed, pairAttempts: 5, at: Date())
        #expect(!progress.onlyDeferred(for: .zero), "a failure in between starts the grace again")
        progress.absorb(deferred, pairAttempts: 5, at: Date())
        #expect(progress.takeWaiting().map(\.deliveryTag).sorted() == [1, 2])
        #expect(progress.isSettled)
    }
}
