import ArgumentParser
import BullhornSimulator
import Foundation

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Runs the built-in Bullhorn simulator on 127.0.0.1 (for demos and manual testing).")

    @Option(help: "Port to listen on (0 picks a free one).")
    var port = 8089

    @Option(help: "Seed of the generated data.")
    var seed: UInt64 = 42

    @Flag(help: "Inject every fault (429 bursts, capacity 500s, 503s, session expiry, login flakes).")
    var hostile = false

    @Option(help: "Seconds between seeded mutations (members added, tearsheets deleted); 0 for none.")
    var mutateEvery: Int = 0

    func run() async throws {
        let world = BullhornWorld(seed: .demo(seed: seed), faults: hostile ? .hostile : SimulatorFaults())
        let account = SimulatedAuth.Account.standard
        let mutateEvery = mutateEvery
        let app = BullhornSimulatorServer(world: world).application(port: port) { base in
            print("""
                Bullhorn simulator on \(base)
                  login info URL: \(base)/rest-services/loginInfo
                  client id: \(account.clientID)  client secret: \(account.clientSecret)
                  username: \(account.username)  password: \(account.password)
                  \(world.tearsheets.count) tearsheets, \(world.candidateIDs.count) candidates, \(world.jobOrderIDs.count) job orders
                """)
            if mutateEvery > 0 {
                Task {
                    var step = 0
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(mutateEvery))
                        let summary = world.mutate(step: step)
                        print("mutation \(step): \(summary.membersAdded) members added, deleted \(summary.tearsheetsDeleted)")
                        step += 1
                    }
                }
            }
        }
        try await app.runService()
    }
}
