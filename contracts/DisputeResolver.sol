// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {IVerifierRegistry} from "./interfaces/IVerifierRegistry.sol";

/// @title DisputeResolver
/// @notice Pinpoint disputes over revealed checkpoint roots, refereed by a committee of staked
/// verifiers that replays one segment.
///
/// A dispute names a segment `j`: both sides accept the worker's `h_j` (Merkle-proven in the
/// worker's root) and disagree on `h_{j+1}`. It is opened either by a registered verifier
/// with a bond (`challenge`), or, for two redundant workers of one task whose roots differ,
/// by anyone without a bond (`disputeWorkers`). The accused claim(s) freeze in the market.
///
/// Committee randomness: at opening, `drawBlock` = the opening transaction's own block is
/// fixed; `drawCommittee` (anyone, in any later block) seeds the draw with
/// `blockhash(drawBlock)`, which the opener cannot know when it signs (the hash covers the
/// whole block, its own transaction included). Limits: the producer of block `drawBlock` can
/// bias the draw (by reordering, or withholding that block), and on a chain whose blocks one
/// party produces (a dev chain) it is predictable; a production deployment should prefer a
/// VRF or a RANDAO value from a later block. If nobody draws within 256 blocks the hash is no longer
/// available and the draw moves to the next block (`DrawRescheduled`). Referees are pool
/// members other than the accused, the accuser and the job's requester; if fewer than
/// `committeeSize` are eligible the draw reverts and the dispute is dismissed at its draw
/// deadline.
///
/// Votes: each referee commits `keccak256(abi.encode(voteHash, referee, salt))` before the
/// commit deadline, then reveals `voteHash` = the `h_{j+1}` its replay produced, or
/// `bytes32(0)` (UNAVAILABLE) when it could not get checkpoint `j`; unavailable counts
/// against the worker(s). Reveals open once every referee committed or the commit deadline
/// passed, and close `revealWindow` later.
///
/// Settlement (`settle`, anyone, once every referee revealed or the reveal deadline passed):
/// a verdict needs more than half of the committee voting the same hash. A party whose
/// `h_{j+1}` differs from the verdict loses: a losing worker's stake is slashed
/// (`refereeFeeBps` to the referee pot, `bountyBps` to the winning side, the rest to the
/// job's escrow) and its slot reopens; a losing challenger's bond goes `refereeFeeBps` to the
/// pot and the rest to the worker. A challenger wins whenever the worker loses. The pot also
/// gets the job's per-dispute referee fee and the slashed stakes (`refereeSlashBps`) of
/// referees that did not reveal or voted against the verdict, and is split among the
/// majority. With no verdict the dispute is dismissed: bonds return, claims are released and
/// slashed referee stakes go to the job's escrow. Every phase has a deadline.
///
/// Gas: a challenge is stored in four slots, a dispute between workers in five
/// ({DisputeStore}); the committee's addresses are packed 160 bits apiece into consecutive
/// words and each ballot's state takes two bits of the slot every vote reads anyway; a
/// settlement pays everyone with one market call ({IJobMarket-creditMany}); `revealVotes`
/// reveals a whole committee in one transaction. The views return the documented structs
/// (a challenge's `accuserNext` reads zero, see {Dispute}).
contract DisputeResolver is ReentrancyGuardTransient {
    enum DisputeStatus {
        None,
        Drawing,
        Voting,
        Settled
    }

    enum Outcome {
        None,
        AccusedLost,
        AccuserLost,
        BothLost,
        Dismissed
    }

    enum BallotState {
        None,
        Committed,
        Revealed
    }

    /// @notice A checkpoint segment as proven from one root: leaf `(j, h)` and leaf
    /// `(j + 1, hNext)`, leaves `keccak256(abi.encode(uint256 i, bytes32 h_i))`.
    struct Segment {
        uint256 j;
        bytes32 h;
        bytes32[] proof;
        bytes32 hNext;
        bytes32[] proofNext;
    }

    /// @notice Resolver-wide parameters, fixed at deployment.
    struct Params {
        uint8 committeeSize;
        uint96 challengeBond;
        uint32 drawWindow;
        uint32 commitWindow;
        uint32 revealWindow;
        uint16 bountyBps;
        uint16 refereeFeeBps;
        uint16 refereeSlashBps;
    }

    /// @notice A dispute. `deadline` is the draw deadline while Drawing and the commit deadline
    /// while Voting (the reveal deadline is `deadline + revealWindow`). `accuserNext` is the
    /// accusing worker's `h_{j+1}` in a dispute between workers, and zero for a challenge: the
    /// challenger's `h_{j+1}` is not needed to settle (a challenger wins exactly when the
    /// worker loses) and is kept only in the {DisputeOpened} event.
    struct Dispute {
        uint256 taskId;
        address accused;
        uint32 segment;
        uint64 drawBlock;
        address accuser;
        uint96 bond;
        address requester;
        uint64 deadline;
        DisputeStatus status;
        Outcome outcome;
        bool accuserIsWorker;
        bytes32 accusedNext;
        bytes32 accuserNext;
    }

    /// @dev Storage form of {Dispute}. Slot 2 is the one every vote reads and writes: status,
    /// deadline, and two bits of {BallotState} per seat. `bondHeld` stands for `bond`: the bond
    /// of a challenge is always the (immutable) `challengeBond`. A task id fits 96 bits: its
    /// claim exists in the market, so its job id is at most the job count (< 2**64).
    struct DisputeStore {
        // slot 0
        address accused;
        uint96 taskId;
        // slot 1
        address accuser;
        uint32 segment;
        uint40 drawBlock;
        bool accuserIsWorker;
        // slot 2
        address requester;
        uint40 deadline;
        DisputeStatus status;
        Outcome outcome;
        bool bondHeld;
        uint32 ballotStates;
        bytes32 accusedNext;
        // written for disputes between workers only (see {Dispute})
        bytes32 accuserNext;
    }

    /// @dev Dispute id counter; `live` is set at construction so the first dispute does not
    /// pay for a zero-to-nonzero store.
    struct Counter {
        uint64 count;
        bool live;
    }

    /// @notice The vote meaning "could not fetch checkpoint j"; counts against the worker.
    bytes32 public constant UNAVAILABLE = bytes32(0);
    uint256 private constant _BPS = 10_000;

    IJobMarket private immutable _market;
    IVerifierRegistry private immutable _registry;
    uint8 private immutable _committeeSize;
    uint96 private immutable _challengeBond;
    uint32 private immutable _drawWindow;
    uint32 private immutable _commitWindow;
    uint32 private immutable _revealWindow;
    uint16 private immutable _bountyBps;
    uint16 private immutable _refereeFeeBps;
    uint16 private immutable _refereeSlashBps;

    Counter private _counter;
    mapping(uint256 disputeId => DisputeStore) private _disputes;
    /// @dev Referee `i` occupies bits [160 i, 160 i + 160) of the word stream `_committee[id][0..]`.
    mapping(uint256 disputeId => mapping(uint256 word => uint256)) private _committee;
    mapping(uint256 disputeId => mapping(uint256 seat => bytes32)) private _ballots;

    event DisputeOpened(
        uint256 indexed disputeId,
        uint256 indexed taskId,
        address indexed accused,
        address accuser,
        bool accuserIsWorker,
        uint32 segment,
        bytes32 accusedNext,
        bytes32 accuserNext,
        uint256 bond,
        uint64 drawBlock
    );
    event DrawRescheduled(uint256 indexed disputeId, uint64 drawBlock);
    event CommitteeDrawn(uint256 indexed disputeId, address[] referees, uint64 commitDeadline, uint64 revealDeadline);
    event RefereeKeyDelivered(uint256 indexed disputeId, address indexed referee, bytes envelope);
    event VoteCommitted(uint256 indexed disputeId, address indexed referee, bytes32 commitment);
    event VoteRevealed(uint256 indexed disputeId, address indexed referee, bytes32 voteHash);
    event DisputeSettled(uint256 indexed disputeId, Outcome outcome, bytes32 verdict, uint256 refereePot);

    error DisputeResolverInvalidParameter(bytes32 name);
    error DisputeResolverNotVerifier(address caller);
    error DisputeResolverSelfChallenge(address worker);
    error DisputeResolverSegmentOutOfRange(uint256 j, uint32 checkpointCount);
    error DisputeResolverBadProof(address worker, uint256 index);
    error DisputeResolverNoDisagreement(bytes32 hNext);
    error DisputeResolverSegmentsDiffer();
    error DisputeResolverWrongStatus(uint256 disputeId, DisputeStatus status);
    error DisputeResolverTooEarly(uint256 disputeId, uint256 opensAfter);
    error DisputeResolverDeadlinePassed(uint256 disputeId, uint256 deadline);
    error DisputeResolverPoolTooSmall(uint256 eligible, uint256 needed);
    error DisputeResolverNotReferee(uint256 disputeId, address caller);
    error DisputeResolverBallotState(uint256 disputeId, address referee, BallotState state);
    error DisputeResolverCommitMismatch(uint256 disputeId, address referee);
    error DisputeResolverNotKeyHolder(uint256 disputeId, address caller);

    /// @param market The {JobMarket} (vault; its `modules()` must name this contract).
    /// @param registry The {VerifierRegistry}; its unbonding delay must exceed
    /// `drawWindow + commitWindow + revealWindow` so a referee's stake outlives its duty.
    /// @param params Committee size (odd, 1..15), challenge bond, phase windows (seconds) and
    /// the shares in basis points (`bountyBps + refereeFeeBps <= 10000`).
    constructor(IJobMarket market, IVerifierRegistry registry, Params memory params) {
        if (params.committeeSize == 0 || params.committeeSize > 15 || params.committeeSize % 2 == 0) {
            revert DisputeResolverInvalidParameter("committeeSize");
        }
        if (params.drawWindow == 0 || params.commitWindow == 0 || params.revealWindow == 0) {
            revert DisputeResolverInvalidParameter("window");
        }
        if (uint256(params.bountyBps) + params.refereeFeeBps > _BPS || params.refereeSlashBps > _BPS) {
            revert DisputeResolverInvalidParameter("bps");
        }
        uint256 longest = uint256(params.drawWindow) + params.commitWindow + params.revealWindow;
        if (registry.unbondingDelay() <= longest) revert DisputeResolverInvalidParameter("unbondingDelay");
        _market = market;
        _registry = registry;
        _committeeSize = params.committeeSize;
        _challengeBond = params.challengeBond;
        _drawWindow = params.drawWindow;
        _commitWindow = params.commitWindow;
        _revealWindow = params.revealWindow;
        _bountyBps = params.bountyBps;
        _refereeFeeBps = params.refereeFeeBps;
        _refereeSlashBps = params.refereeSlashBps;
        _counter.live = true;
    }

    // ------------------------------------------------------------------ opening

    /// @notice A registered verifier disputes `worker`'s result on task `taskId` at segment
    /// `seg.j`: the proofs show `(j, h)` and `(j + 1, hNext)` in the worker's revealed root, and
    /// the verifier's replay gives `claimedNext != hNext`. Pulls `challengeBond` from the caller
    /// (approve the market). Returns the dispute id (from 1). Emits a {DisputeOpened} event.
    function challenge(uint256 taskId, address worker, Segment calldata seg, bytes32 claimedNext)
        external
        nonReentrant
        returns (uint256 disputeId)
    {
        if (!_registry.isActive(msg.sender)) revert DisputeResolverNotVerifier(msg.sender);
        if (worker == msg.sender) revert DisputeResolverSelfChallenge(worker);
        if (claimedNext == seg.hNext) revert DisputeResolverNoDisagreement(claimedNext);
        IJobMarket.DisputedClaim memory c = _market.openDispute(taskId, worker);
        _checkSegment(seg, c, worker);
        uint96 bond = _challengeBond;
        disputeId = _open(taskId, worker, msg.sender, false, c.requester, seg, claimedNext, bond);
        if (bond != 0) _market.collect(msg.sender, bond);
    }

    /// @notice Anyone puts two redundant workers of one task in dispute: both revealed roots
    /// hold the same `(j, h)` and different `h_{j+1}`. No bond. `workerA` is recorded as the
    /// accused, `workerB` as the accuser; the referees' verdict decides for each separately.
    /// Emits a {DisputeOpened} event.
    function disputeWorkers(
        uint256 taskId,
        address workerA,
        Segment calldata segA,
        address workerB,
        Segment calldata segB
    ) external nonReentrant returns (uint256 disputeId) {
        if (workerA == workerB) revert DisputeResolverSelfChallenge(workerA);
        if (segA.j != segB.j || segA.h != segB.h) revert DisputeResolverSegmentsDiffer();
        if (segA.hNext == segB.hNext) revert DisputeResolverNoDisagreement(segA.hNext);
        IJobMarket.DisputedClaim memory a = _market.openDispute(taskId, workerA);
        _checkSegment(segA, a, workerA);
        IJobMarket.DisputedClaim memory b = _market.openDispute(taskId, workerB);
        _checkSegment(segB, b, workerB);
        disputeId = _open(taskId, workerA, workerB, true, a.requester, segA, segB.hNext, 0);
    }

    // ------------------------------------------------------------------ committee

    /// @notice Draw the committee from `blockhash(drawBlock)` (anyone, once that block is
    /// mined). If the hash is no longer available, reschedules to the next block instead
    /// (emits {DrawRescheduled}). Emits a {CommitteeDrawn} event.
    function drawCommittee(uint256 disputeId) external {
        DisputeStore storage d = _inStatus(disputeId, DisputeStatus.Drawing);
        if (block.timestamp > d.deadline) revert DisputeResolverDeadlinePassed(disputeId, d.deadline);
        uint64 drawBlock = d.drawBlock;
        if (block.number <= drawBlock) revert DisputeResolverTooEarly(disputeId, drawBlock);
        bytes32 seed = blockhash(drawBlock);
        if (seed == bytes32(0)) {
            d.drawBlock = uint40(block.number); // the hash of this block: known from the next
            emit DrawRescheduled(disputeId, uint64(block.number));
            return;
        }
        address[] memory chosen = _draw(keccak256(abi.encode(seed, disputeId)), d);
        _storeCommittee(disputeId, chosen);
        uint64 commitDeadline = uint64(block.timestamp) + _commitWindow;
        (d.status, d.deadline) = (DisputeStatus.Voting, uint40(commitDeadline));
        emit CommitteeDrawn(disputeId, chosen, commitDeadline, commitDeadline + _revealWindow);
    }

    /// @notice The job's requester, or a worker party to the dispute (it holds the data key
    /// too, so a requester cannot starve referees of keys to hurt an honest worker), delivers
    /// the data key wrapped to a drawn referee's public key. Emits a {RefereeKeyDelivered} event.
    function deliverRefereeKey(uint256 disputeId, address referee, bytes calldata envelope) external {
        DisputeStore storage d = _inStatus(disputeId, DisputeStatus.Voting);
        bool holder = msg.sender == d.requester || msg.sender == d.accused
            || (d.accuserIsWorker && msg.sender == d.accuser);
        if (!holder) revert DisputeResolverNotKeyHolder(disputeId, msg.sender);
        _seatOf(disputeId, referee);
        emit RefereeKeyDelivered(disputeId, referee, envelope);
    }

    /// @notice A drawn referee commits `keccak256(abi.encode(voteHash, msg.sender, salt))`
    /// before the commit deadline. Emits a {VoteCommitted} event.
    function commitVote(uint256 disputeId, bytes32 commitment) external {
        DisputeStore storage d = _inStatus(disputeId, DisputeStatus.Voting);
        if (block.timestamp > d.deadline) revert DisputeResolverDeadlinePassed(disputeId, d.deadline);
        uint256 seat = _seatOf(disputeId, msg.sender);
        uint32 states = d.ballotStates;
        BallotState state = _stateAt(states, seat);
        if (state != BallotState.None) revert DisputeResolverBallotState(disputeId, msg.sender, state);
        d.ballotStates = _withState(states, seat, BallotState.Committed);
        _ballots[disputeId][seat] = commitment;
        emit VoteCommitted(disputeId, msg.sender, commitment);
    }

    /// @notice Reveal the committed vote: the `h_{j+1}` the referee's replay produced, or
    /// UNAVAILABLE. Opens once all referees committed or the commit deadline passed.
    /// Emits a {VoteRevealed} event.
    function revealVote(uint256 disputeId, bytes32 voteHash, bytes32 salt) external {
        DisputeStore storage d = _inStatus(disputeId, DisputeStatus.Voting);
        uint256 seat = _seatOf(disputeId, msg.sender);
        uint32 states = d.ballotStates;
        BallotState state = _stateAt(states, seat);
        if (state != BallotState.Committed) revert DisputeResolverBallotState(disputeId, msg.sender, state);
        _checkRevealOpen(disputeId, d, states);
        _recordVote(disputeId, seat, msg.sender, voteHash, salt);
        d.ballotStates = _withState(states, seat, BallotState.Revealed);
    }

    /// @notice Reveal several referees' committed votes in one transaction (anyone may send
    /// it, e.g. one referee or a relayer for the committee): each commitment binds its
    /// referee's address, so only the `(voteHash, salt)` the referee committed to can be
    /// revealed for it. Same rules and errors as {revealVote}, entry by entry; any invalid
    /// entry reverts the whole call. Emits a {VoteRevealed} event per referee.
    function revealVotes(
        uint256 disputeId,
        address[] calldata referees,
        bytes32[] calldata voteHashes,
        bytes32[] calldata salts
    ) external {
        if (referees.length != voteHashes.length || referees.length != salts.length) {
            revert DisputeResolverInvalidParameter("lengths");
        }
        DisputeStore storage d = _inStatus(disputeId, DisputeStatus.Voting);
        uint32 states = d.ballotStates;
        _checkRevealOpen(disputeId, d, states);
        for (uint256 i = 0; i < referees.length; ++i) {
            address referee = referees[i];
            uint256 seat = _seatOf(disputeId, referee);
            BallotState state = _stateAt(states, seat);
            if (state != BallotState.Committed) revert DisputeResolverBallotState(disputeId, referee, state);
            _recordVote(disputeId, seat, referee, voteHashes[i], salts[i]);
            states = _withState(states, seat, BallotState.Revealed);
        }
        d.ballotStates = states;
    }

    // ------------------------------------------------------------------ settlement

    /// @dev Everything a settlement pays out, gathered and then moved with one market call.
    struct Payout {
        address[] to;
        uint256[] amounts;
        uint256 count;
        uint256 toEscrow;
        uint256 pot;
    }

    /// @notice Settle a dispute (anyone): while Drawing, after the draw deadline (dismissed);
    /// while Voting, once every referee revealed or after the reveal deadline.
    /// Emits a {DisputeSettled} event.
    function settle(uint256 disputeId) external nonReentrant {
        DisputeStore storage d = _disputes[disputeId];
        uint256 seats = _seatsIfSettleable(disputeId, d);
        d.status = DisputeStatus.Settled;
        uint32 states = d.ballotStates;
        bytes32[] memory votes = _votes(disputeId, states, seats);
        (bytes32 verdict, bool decided) = _tally(votes, states);
        Payout memory p = Payout(new address[](seats + 2), new uint256[](seats + 2), 0, 0, 0);
        address[] memory referees = _referees(disputeId, seats);
        p.pot = _slashReferees(referees, votes, states, verdict, decided);
        Outcome outcome;
        if (decided) {
            outcome = _decide(d, p, verdict);
            _payMajority(p, referees, votes, states, verdict);
        } else {
            outcome = Outcome.Dismissed;
            _upheld(d, p, d.accused, true);
            _upheld(d, p, d.accuser, false);
            p.toEscrow += p.pot;
        }
        d.outcome = outcome;
        _payOut(p, uint256(d.taskId) >> 32);
        emit DisputeSettled(disputeId, outcome, verdict, p.pot);
    }

    // ------------------------------------------------------------------ views

    function getDispute(uint256 disputeId) external view returns (Dispute memory r) {
        DisputeStore storage d = _disputes[disputeId];
        (r.taskId, r.accused, r.segment, r.drawBlock) = (d.taskId, d.accused, d.segment, d.drawBlock);
        (r.accuser, r.bond, r.requester, r.deadline) =
            (d.accuser, d.bondHeld ? _challengeBond : 0, d.requester, d.deadline);
        (r.status, r.outcome, r.accuserIsWorker) = (d.status, d.outcome, d.accuserIsWorker);
        (r.accusedNext, r.accuserNext) = (d.accusedNext, d.accuserNext);
    }

    /// @notice The committee with each referee's ballot state and ballot (commitment while
    /// Committed, vote once Revealed).
    function getBallots(uint256 disputeId)
        external
        view
        returns (address[] memory referees, BallotState[] memory states, bytes32[] memory ballots)
    {
        uint256 n = _committee[disputeId][0] == 0 ? 0 : _committeeSize;
        referees = _referees(disputeId, n);
        states = new BallotState[](n);
        ballots = new bytes32[](n);
        uint32 bits = _disputes[disputeId].ballotStates;
        for (uint256 i = 0; i < n; ++i) {
            states[i] = _stateAt(bits, i);
            ballots[i] = _ballots[disputeId][i];
        }
    }

    function disputeCount() external view returns (uint256) {
        return _counter.count;
    }

    function params() external view returns (Params memory) {
        return Params(
            _committeeSize,
            _challengeBond,
            _drawWindow,
            _commitWindow,
            _revealWindow,
            _bountyBps,
            _refereeFeeBps,
            _refereeSlashBps
        );
    }

    /// @notice Challenge bonds currently held for open disputes: the market holds exactly these
    /// for this resolver between transactions (fees and slashed stakes pass through within
    /// `settle`).
    function totalBonds() external view returns (uint256) {
        return _market.heldBy(address(this));
    }

    function market() external view returns (address) {
        return address(_market);
    }

    function registry() external view returns (address) {
        return address(_registry);
    }

    // ------------------------------------------------------------------ internal

    function _checkSegment(Segment calldata seg, IJobMarket.DisputedClaim memory c, address worker) private pure {
        if (seg.j + 1 >= c.checkpointCount) revert DisputeResolverSegmentOutOfRange(seg.j, c.checkpointCount);
        if (!MerkleProof.verifyCalldata(seg.proof, c.root, keccak256(abi.encode(seg.j, seg.h)))) {
            revert DisputeResolverBadProof(worker, seg.j);
        }
        if (!MerkleProof.verifyCalldata(seg.proofNext, c.root, keccak256(abi.encode(seg.j + 1, seg.hNext)))) {
            revert DisputeResolverBadProof(worker, seg.j + 1);
        }
    }

    function _open(
        uint256 taskId,
        address accused,
        address accuser,
        bool accuserIsWorker,
        address requester,
        Segment calldata seg,
        bytes32 accuserNext,
        uint96 bond
    ) private returns (uint256 disputeId) {
        // cannot overflow: one dispute per transaction, 2**64 transactions will never happen
        unchecked {
            disputeId = ++_counter.count;
        }
        DisputeStore storage d = _disputes[disputeId];
        uint64 drawBlock = uint64(block.number);
        uint64 deadline = uint64(block.timestamp) + _drawWindow;
        // taskId < 2**96: the market holds a revealed claim on it (see {DisputeStore})
        (d.accused, d.taskId) = (accused, uint96(taskId));
        (d.accuser, d.segment, d.drawBlock, d.accuserIsWorker) =
            (accuser, uint32(seg.j), uint40(drawBlock), accuserIsWorker);
        (d.requester, d.deadline, d.status, d.bondHeld) =
            (requester, uint40(deadline), DisputeStatus.Drawing, bond != 0);
        d.accusedNext = seg.hNext;
        // a challenger's h_{j+1} never decides anything: the event keeps it (see {Dispute})
        if (accuserIsWorker) d.accuserNext = accuserNext;
        emit DisputeOpened(
            disputeId, taskId, accused, accuser, accuserIsWorker, uint32(seg.j), seg.hNext, accuserNext, bond, drawBlock
        );
    }

    /// @dev Reverts unless votes may be revealed now: every referee committed or the commit
    /// deadline passed, and the reveal deadline has not passed.
    function _checkRevealOpen(uint256 disputeId, DisputeStore storage d, uint32 states) private view {
        uint256 deadline = d.deadline;
        if (block.timestamp <= deadline && !_allAtLeast(states, BallotState.Committed)) {
            revert DisputeResolverTooEarly(disputeId, deadline);
        }
        uint256 revealDeadline = deadline + _revealWindow;
        if (block.timestamp > revealDeadline) revert DisputeResolverDeadlinePassed(disputeId, revealDeadline);
    }

    /// @dev Check `referee`'s committed ballot in `seat` against `(voteHash, salt)` and record
    /// the vote in its place (the caller updates the ballot state).
    function _recordVote(uint256 disputeId, uint256 seat, address referee, bytes32 voteHash, bytes32 salt) private {
        if (keccak256(abi.encode(voteHash, referee, salt)) != _ballots[disputeId][seat]) {
            revert DisputeResolverCommitMismatch(disputeId, referee);
        }
        _ballots[disputeId][seat] = voteHash;
        emit VoteRevealed(disputeId, referee, voteHash);
    }

    /// @dev Random picks first, then a scan from a random offset, so the draw succeeds
    /// whenever enough eligible verifiers exist (see {IVerifierRegistry-drawReferees}; the pool
    /// is read where it is stored, in one call).
    function _draw(bytes32 seed, DisputeStore storage d) private view returns (address[] memory chosen) {
        uint256 size = _committeeSize;
        uint256 count;
        (chosen, count) = _registry.drawReferees(seed, size, [d.accused, d.accuser, d.requester]);
        if (count < size) revert DisputeResolverPoolTooSmall(count, size);
    }

    /// @dev Pack the referees 160 bits apiece into consecutive words.
    function _storeCommittee(uint256 disputeId, address[] memory referees) private {
        uint256 words = (referees.length * 160 + 255) / 256;
        uint256[] memory packed = new uint256[](words + 1);
        for (uint256 i = 0; i < referees.length; ++i) {
            uint256 bit = i * 160;
            uint256 value = uint160(referees[i]);
            packed[bit >> 8] |= value << (bit & 255);
            if ((bit & 255) > 96) packed[(bit >> 8) + 1] |= value >> (256 - (bit & 255));
        }
        mapping(uint256 => uint256) storage committee = _committee[disputeId];
        for (uint256 w = 0; w < words; ++w) {
            committee[w] = packed[w];
        }
    }

    function _seatOf(uint256 disputeId, address referee) private view returns (uint256) {
        mapping(uint256 => uint256) storage words = _committee[disputeId];
        uint256 n = _committeeSize;
        uint256 cur = words[0];
        uint256 curIndex;
        for (uint256 i = 0; i < n; ++i) {
            uint256 bit = i * 160;
            uint256 off = bit & 255;
            if (bit >> 8 != curIndex) (cur, curIndex) = (words[bit >> 8], bit >> 8);
            uint256 value = cur >> off;
            if (off > 96) {
                (cur, curIndex) = (words[curIndex + 1], curIndex + 1);
                value |= cur << (256 - off);
            }
            if (address(uint160(value)) == referee) return i;
        }
        revert DisputeResolverNotReferee(disputeId, referee);
    }

    /// @dev The whole committee of a dispute that reached Voting.
    function _referees(uint256 disputeId, uint256 n) private view returns (address[] memory referees) {
        referees = new address[](n);
        if (n == 0) return referees;
        mapping(uint256 => uint256) storage words = _committee[disputeId];
        uint256 cur = words[0];
        uint256 curIndex;
        for (uint256 i = 0; i < n; ++i) {
            uint256 bit = i * 160;
            uint256 off = bit & 255;
            if (bit >> 8 != curIndex) (cur, curIndex) = (words[bit >> 8], bit >> 8);
            uint256 value = cur >> off;
            if (off > 96) {
                (cur, curIndex) = (words[curIndex + 1], curIndex + 1);
                value |= cur << (256 - off);
            }
            referees[i] = address(uint160(value));
        }
    }

    function _stateAt(uint32 states, uint256 seat) private pure returns (BallotState) {
        return BallotState((states >> (2 * seat)) & 3);
    }

    function _withState(uint32 states, uint256 seat, BallotState state) private pure returns (uint32) {
        return (states & ~uint32(3 << (2 * seat))) | uint32(uint256(state) << (2 * seat));
    }

    function _allAtLeast(uint32 states, BallotState state) private view returns (bool) {
        uint256 n = _committeeSize;
        for (uint256 i = 0; i < n; ++i) {
            if (_stateAt(states, i) < state) return false;
        }
        return true;
    }

    /// @dev Each seat's revealed vote (zero for a seat that did not reveal; such seats are
    /// skipped wherever votes are compared, see {_revealed}).
    function _votes(uint256 disputeId, uint32 states, uint256 seats) private view returns (bytes32[] memory votes) {
        votes = new bytes32[](seats);
        for (uint256 i = 0; i < seats; ++i) {
            if (_stateAt(states, i) == BallotState.Revealed) votes[i] = _ballots[disputeId][i];
        }
    }

    function _revealed(uint32 states, uint256 seat) private pure returns (bool) {
        return _stateAt(states, seat) == BallotState.Revealed;
    }

    /// @dev The hash more than half of the committee revealed, if any.
    function _tally(bytes32[] memory votes, uint32 states) private pure returns (bytes32 verdict, bool decided) {
        uint256 n = votes.length;
        for (uint256 i = 0; i < n; ++i) {
            if (!_revealed(states, i)) continue;
            uint256 count = 1;
            for (uint256 k = i + 1; k < n; ++k) {
                if (_revealed(states, k) && votes[k] == votes[i]) ++count;
            }
            if (count * 2 > n) return (votes[i], true);
        }
        return (bytes32(0), false);
    }

    /// @dev Reverts unless `settle` may run now; the number of seats to settle (0 if never drawn).
    function _seatsIfSettleable(uint256 disputeId, DisputeStore storage d) private view returns (uint256) {
        DisputeStatus status = d.status;
        if (status == DisputeStatus.Drawing) {
            if (block.timestamp <= d.deadline) revert DisputeResolverTooEarly(disputeId, d.deadline);
            return 0;
        }
        if (status != DisputeStatus.Voting) revert DisputeResolverWrongStatus(disputeId, status);
        uint256 revealDeadline = uint256(d.deadline) + _revealWindow;
        if (block.timestamp <= revealDeadline && !_allAtLeast(d.ballotStates, BallotState.Revealed)) {
            revert DisputeResolverTooEarly(disputeId, revealDeadline);
        }
        return _committeeSize;
    }

    /// @dev A verdict exists: who lost, their stakes or bond, the referee fee; the outcome.
    function _decide(DisputeStore storage d, Payout memory p, bytes32 verdict) private returns (Outcome) {
        p.pot += _market.takeRefereeFee(uint256(d.taskId) >> 32);
        bool isWorker = d.accuserIsWorker;
        (address accused, address accuser) = (d.accused, d.accuser);
        bool accusedLost = verdict != d.accusedNext;
        bool accuserLost = isWorker ? verdict != d.accuserNext : !accusedLost;
        if (accusedLost) _slashWorker(d, p, accused, accuserLost ? address(0) : accuser);
        else _upheld(d, p, accused, true);
        if (accuserLost) {
            if (isWorker) _slashWorker(d, p, accuser, accusedLost ? address(0) : accused);
            else _forfeitBond(d, p);
        } else {
            _upheld(d, p, accuser, false);
        }
        if (!accusedLost) return Outcome.AccuserLost;
        return accuserLost ? Outcome.BothLost : Outcome.AccusedLost;
    }

    /// @dev Every credit of a settlement in one market call.
    function _payOut(Payout memory p, uint256 jobId) private {
        if (p.count == 0 && p.toEscrow == 0) return;
        (address[] memory to, uint256[] memory amounts) = (p.to, p.amounts);
        uint256 count = p.count;
        // shrink both arrays to the entries used (count <= their allocated length)
        assembly ("memory-safe") {
            mstore(to, count)
            mstore(amounts, count)
        }
        _market.creditMany(to, amounts, jobId, p.toEscrow);
    }

    /// @dev Slash referees that did not reveal or voted against the verdict; returns the total.
    function _slashReferees(
        address[] memory referees,
        bytes32[] memory votes,
        uint32 states,
        bytes32 verdict,
        bool decided
    ) private returns (uint256 pot) {
        for (uint256 i = 0; i < votes.length; ++i) {
            if (_revealed(states, i) && (!decided || votes[i] == verdict)) continue;
            address referee = referees[i];
            uint256 amount = (_registry.stakeOf(referee) * _refereeSlashBps) / _BPS;
            if (amount != 0) pot += _registry.slash(referee, amount);
        }
    }

    /// @dev Slash a losing worker's stake: referee share to the pot, bounty to `winner` (none
    /// if zero), rest to the job's escrow.
    function _slashWorker(DisputeStore storage d, Payout memory p, address worker, address winner) private {
        uint256 stake = _market.slashClaim(d.taskId, worker);
        uint256 refShare = (stake * _refereeFeeBps) / _BPS;
        uint256 rest = stake - refShare;
        p.pot += refShare;
        if (winner != address(0)) {
            uint256 bounty = (stake * _bountyBps) / _BPS;
            rest -= bounty;
            if (!d.accuserIsWorker) bounty += _returnBond(d);
            _pay(p, winner, bounty);
        }
        p.toEscrow += rest;
    }

    /// @dev A losing challenger's bond: referee share to the pot, rest to the worker.
    function _forfeitBond(DisputeStore storage d, Payout memory p) private {
        uint256 bond = _returnBond(d);
        uint256 refShare = (bond * _refereeFeeBps) / _BPS;
        p.pot += refShare;
        _pay(p, d.accused, bond - refShare);
    }

    /// @dev A party that did not lose: a worker's claim is released; a challenger's bond returns.
    function _upheld(DisputeStore storage d, Payout memory p, address party, bool isWorker) private {
        if (isWorker || d.accuserIsWorker) {
            _market.releaseClaim(d.taskId, party);
        } else {
            _pay(p, party, _returnBond(d));
        }
    }

    /// @dev Takes the bond out of the books once (bonds are paid out exactly once).
    function _returnBond(DisputeStore storage d) private returns (uint256 bond) {
        if (!d.bondHeld) return 0;
        d.bondHeld = false;
        return _challengeBond;
    }

    function _payMajority(
        Payout memory p,
        address[] memory referees,
        bytes32[] memory votes,
        uint32 states,
        bytes32 verdict
    ) private pure {
        uint256 winners;
        for (uint256 i = 0; i < votes.length; ++i) {
            if (_revealed(states, i) && votes[i] == verdict) ++winners;
        }
        uint256 share = p.pot / winners;
        for (uint256 i = 0; i < votes.length && share != 0; ++i) {
            if (_revealed(states, i) && votes[i] == verdict) _pay(p, referees[i], share);
        }
        p.toEscrow += p.pot - share * winners;
    }

    function _pay(Payout memory p, address to, uint256 amount) private pure {
        if (amount == 0) return;
        p.to[p.count] = to;
        p.amounts[p.count] = amount;
        ++p.count;
    }

    function _inStatus(uint256 disputeId, DisputeStatus status) private view returns (DisputeStore storage d) {
        d = _disputes[disputeId];
        if (d.status != status) revert DisputeResolverWrongStatus(disputeId, d.status);
    }
}
