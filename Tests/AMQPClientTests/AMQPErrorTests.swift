import AMQPClient
import Testing

@Suite struct AMQPErrorTests {
    /// A connection the broker closes for its own reasons is worth reconnecting for; one it
    /// closes for a frame of ours that breaks the protocol would only be closed again.
    @Test(arguments: [(UInt16(320), true), (506, true), (541, true), (501, false), (503, false), (504, false), (530, false)])
    func aConnectionClosedByTheBrokerIsRetriableWhenTheFaultIsTheBrokers(replyCode: UInt16, retriable: Bool) {
        #expect(AMQPError(.connectionClosed, "closed", replyCode: replyCode).isRetriable == retriable)
    }
}
