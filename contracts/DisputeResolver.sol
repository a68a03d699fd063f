// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IJobMarket, IJobMarketJobs} from "./interfaces/IJobMarket.sol";
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
/// Data availability is the accused's burden: a challenge names the segment only, without
/// any proof about the worker's root (nobody but the worker may be able to produce one). The
/// dispute starts Answering: within `responseWindow` the accused (or anyone holding its
/// leaves) must `answer` with `(j, h_j)` and `(j + 1, h_{j+1})` and their Merkle proofs in
/// its revealed root, or anyone may `settle` it as lost by the accused (its stake slashed,
/// the challenger's bond returned with the bounty). A worker that revealed a root it cannot
/// open loses every challenge. {DisputeAnswered} carries `h_j` and `h_{j+1}` for the referees.
///
/// Decoys: several disputes of one claim may be open at once, and a released claim stays
/// open to challenge for a full challenge window after its last dispute closes (see
/// {IJobMarket-openDispute}), so a dispute cannot shut out another challenger or run out its
/// clock. A challenge whose committee nobody drew by the draw deadline has lapsed: the bond
/// goes to the job's escrow (not to the accused, which may be the challenger's own account).
/// Anyone can draw and settle any dispute.
///
/// Committee randomness: at opening (for a challenge without proofs: at the answer),
/// `drawBlock` = that transaction's own block is fixed; `drawCommittee` (anyone, in any later
/// block) seeds the draw with `blockhash(drawBlock)`, which the sender cannot know when it
/// signs (the hash covers the whole block, its own transaction included). Limits: the producer of block `drawBlock` can
/// bias the draw (by reordering, or withholding that block), and on a chain whose blocks one
/// party produces (a dev chain) it is predictable; a production deployment should prefer a
/// VRF or a RANDAO value from a later block. If nobody draws within 256 blocks the hash is no longer
/// available and the draw moves to the next block (`DrawRescheduled`). Referees are pool
/// members other than the accused, the accuser and the job's requester; if fewer than
/// `committeeSize` are eligible the draw reverts and the dispute is dismissed at its draw
/// deadline.
///
/// Votes: the referee in seat `s` (its index in {CommitteeDrawn}'s `referees`) commits
/// `keccak256(abi.encode(voteHash, referee, salt))` before the commit deadline, then reveals
/// `voteHash` = the `h_{j+1}` its replay produced, or `bytes32(0)` (UNAVAILABLE) when it could
/// not get checkpoint `j`. Reveals open once every referee committed or the commit deadline
/// passed, and close `revealWindow` later. The contract keeps what a revealed vote says about
/// the parties, not the hash (the hash is in {VoteRevealed}): ForAccused (it equals the
/// accused's `h_{j+1}`), ForAccuser (the accusing worker's, disputes between workers only) or
/// Against (anything else; UNAVAILABLE is always Against, so it counts against the
/// worker(s)).
///
/// Settlement (`settle`, anyone, once every referee revealed or the reveal deadline passed):
/// the verdict is the vote more than half of the committee cast (ForAccused, ForAccuser or
/// Against); a party the verdict does not side with loses: a losing worker's stake is slashed
/// (`refereeFeeBps` to the referee pot, `bountyBps` to the winning side, the rest to the
/// job's escrow) and its slot reopens; a losing challenger's bond goes `refereeFeeBps` to the
/// pot and the rest to the worker. A challenger wins whenever the worker loses. The pot also
/// gets the job's per-dispute referee fee and the slashed stakes (`refereeSlashBps`) of
/// referees that did not reveal or voted against the verdict, and is split among the
/// majority. With no verdict the dispute is dismissed: bonds return, claims are released and
/// slashed referee stakes go to the job's escrow. Every phase has a deadline.
///
/// Gas: a challenge is stored in three slots (two at opening and `accusedNext` at the answer
/// when it proved nothing), a dispute between workers in four
/// ({DisputeStore}); the committee's addresses are packed 160 bits apiece into consecutive
/// words; each ballot's state takes three bits of the slot every vote reads anyway; a reveal
/// clears its commitment (a storage refund) since the vote lives in those three bits; a
/// settlement pays everyone with one market call ({IJobMarket-creditMany}).
///
/// Forced errors (docs/spec/forced.md; off when `forcedErrorBps` is 0): a redundancy-1 claim
/// drawn by its sealed seed publishes one checkpoint wrong on purpose. Its worker answers a
/// challenge of that segment with {answerForced} (no committee: the first such challenger gets
/// its bond back and the jackpot, funded by a fee on every redundancy-1 job); after the
/// challenge window it opens its seed ({openSeed}), and a drawn claim that published the real
/// checkpoint instead can then be disputed with {challengeOptOut}.
contract DisputeResolver is ReentrancyGuardTransient {
    enum DisputeStatus {
        None,
        Drawing,
        Voting,
        Settled,
        Answering
    }

    /// @notice AccusedLost also when the accused did not answer in time (verdict None);
    /// Dismissed: no majority, or no committee could be drawn (the pool is too small);
    /// Lapsed: nobody drew the committee by the draw deadline (a challenger's bond goes to the
    /// job's escrow; between workers nothing moves); Forced: the accused proved the result a
    /// forced error ({answerForced}): claim released, bond back, the jackpot to the challenger.
    enum Outcome {
        None,
        AccusedLost,
        AccuserLost,
        BothLost,
        Dismissed,
        Lapsed,
        Forced
    }

    /// @notice What opened a dispute: a verifier's challenge, two redundant workers, or a
    /// verifier's opt-out challenge of a forced error's segment ({challengeOptOut}).
    enum DisputeKind {
        Challenge,
        Workers,
        OptOut
    }

    /// @notice A seat's ballot: not yet committed, committed, or revealed with what the vote
    /// says (see the contract notes).
    enum BallotState {
        None,
        Committed,
        ForAccused,
        ForAccuser,
        Against
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
        uint32 responseWindow;
        uint16 forcedErrorBps;
        uint16 jackpotFeeBps;
    }

    /// @notice A dispute. `deadline` is the answer deadline while Answering, the draw deadline
    /// while Drawing and the commit deadline
    /// while Voting (the reveal deadline is `deadline + revealWindow`). `drawBlock` reads zero
    /// once the committee is drawn. `bond` is the challenge bond while it is held (zero for a
    /// dispute between workers and once settled). `accuserNext` is the accusing worker's
    /// `h_{j+1}` in a dispute between workers, and zero for a challenge: the challenger's
    /// `h_{j+1}` is not needed to settle (a challenger wins exactly when the worker loses) and
    /// is kept only in the {DisputeOpened} event.
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

    /// @dev Storage form of {Dispute}. Slot 1 is the one every vote reads and writes. While
    /// Drawing, `drawBlockOrBallots` is the draw block; from the draw on, the ballot states,
    /// three bits a seat. Deadlines are unix seconds in 32 bits (to the year 2106; SafeCast
    /// reverts beyond). The task id fits 64 bits: the market's job ids fit 32
    /// ({JobMarket-postJob}). The requester is read from the market when needed and the bond
    /// is the immutable `challengeBond` of every challenge, so neither is stored.
    struct DisputeStore {
        // slot 0
        address accused;
        uint64 taskId;
        uint32 segment;
        // slot 1
        address accuser;
        uint32 deadline;
        uint40 drawBlockOrBallots;
        DisputeStatus status;
        Outcome outcome;
        DisputeKind kind;
        // slot 2
        bytes32 accusedNext;
        // slot 3, written for disputes between workers only (see {Dispute})
        bytes32 accuserNext;
    }

    /// @dev Dispute id counter; `live` is set at construction so the first dispute does not
    /// pay for a zero-to-nonzero store. `openBonds`: the challenge bonds of unsettled
    /// disputes; the rest of what the market holds for this resolver is the jackpot pool.
    struct Counter {
        uint64 count;
        bool live;
        uint96 openBonds;
    }

    /// @notice The vote meaning "could not fetch checkpoint j"; always counts against the worker(s).
    bytes32 public constant UNAVAILABLE = bytes32(0);
    /// @notice {getDispute}'s `accuserNext` of an opt-out challenge ({challengeOptOut}).
    bytes32 public constant OPT_OUT = keccak256("veritrain.forced.optOut");
    /// @notice Largest committee: each seat's ballot state takes 3 of the 40 bits in {DisputeStore}.
    uint256 public constant MAX_COMMITTEE = 13;
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
    uint32 private immutable _responseWindow;
    uint16 private immutable _forcedErrorBps;
    uint16 private immutable _jackpotFeeBps;

    Counter private _counter;
    mapping(uint256 disputeId => DisputeStore) private _disputes;
    /// @dev Referee `i` occupies bits [160 i, 160 i + 160) of the word stream `_committee[id][0..]`.
    mapping(uint256 disputeId => mapping(uint256 word => uint256)) private _committee;
    /// @dev A seat's vote commitment while Committed (cleared by the reveal).
    mapping(uint256 disputeId => mapping(uint256 seat => bytes32)) private _commitments;
    /// @dev An opened, selected claim's `j* + 1`, by its seal (lowest bit clear): what
    /// {challengeOptOut} disputes. Keyed by the seal so a later claim never inherits it.
    mapping(bytes32 seal => uint32) private _forcedAt;
    /// @dev Forced-error claims (by their seal) whose jackpot was paid (once per claim): the
    /// dispute count at the payment. A dispute opened later challenged a segment already
    /// public as forced: it is a false challenge and its bond goes to the worker.
    mapping(bytes32 seal => uint64 disputeCount) private _jackpotPaidAt;

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
    /// @notice The accused showed its leaves `(segment, h)` and `(segment + 1, hNext)` in its
    /// root; the committee is drawn from `blockhash(drawBlock)`.
    event DisputeAnswered(uint256 indexed disputeId, bytes32 h, bytes32 hNext, uint64 drawBlock);
    event DrawRescheduled(uint256 indexed disputeId, uint64 drawBlock);
    event CommitteeDrawn(uint256 indexed disputeId, address[] referees, uint64 commitDeadline, uint64 revealDeadline);
    event RefereeKeyDelivered(uint256 indexed disputeId, address indexed referee, bytes envelope);
    event VoteCommitted(uint256 indexed disputeId, address indexed referee, bytes32 commitment);
    event VoteRevealed(uint256 indexed disputeId, address indexed referee, bytes32 voteHash, BallotState vote);
    /// @param verdict The vote of the majority (None when dismissed).
    event DisputeSettled(uint256 indexed disputeId, Outcome outcome, BallotState verdict, uint256 refereePot);
    event JackpotPaid(uint256 indexed disputeId, address indexed catcher, uint256 amount);
    event SeedOpened(uint256 indexed taskId, address indexed worker, bool selected, uint32 segment);

    error DisputeResolverInvalidParameter(string name);
    error DisputeResolverNotVerifier(address caller);
    error DisputeResolverSelfChallenge(address worker);
    error DisputeResolverSegmentOutOfRange(uint256 j, uint32 checkpointCount);
    error DisputeResolverBadProof(address worker, uint256 index);
    error DisputeResolverNoDisagreement(bytes32 hNext);
    error DisputeResolverSegmentsDiffer();
    error DisputeResolverWrongStatus(uint256 disputeId, DisputeStatus status);
    error DisputeResolverTooEarly(uint256 disputeId, uint256 opensAfter);
    error DisputeResolverDeadlinePassed(uint256 disputeId, uint256 deadline);
    error DisputeResolverNotReferee(uint256 disputeId, address caller);
    error DisputeResolverBallotState(uint256 disputeId, address referee, BallotState state);
    error DisputeResolverCommitMismatch(uint256 disputeId, address referee);
    error DisputeResolverNotKeyHolder(uint256 disputeId, address caller);
    error DisputeResolverBadSecret(uint256 disputeId);
    error DisputeResolverBadSeed(uint256 taskId, address worker);
    error DisputeResolverNotSelected(uint256 disputeId);
    error DisputeResolverNotForcedSegment(uint256 disputeId, uint256 segment, uint256 forcedSegment);
    error DisputeResolverSeedOpened(uint256 taskId, address worker);
    error DisputeResolverNotOptOut(uint256 taskId, address worker);

    /// @param market The {JobMarket} (vault; its `modules()` must name this contract).
    /// @param registry The {VerifierRegistry}; its unbonding delay must exceed
    /// `drawWindow + commitWindow + revealWindow` so a referee's stake outlives its duty.
    /// @param params Committee size (odd, 1..13), challenge bond, phase windows (seconds), the
    /// shares in basis points (`bountyBps + refereeFeeBps <= 10000`) and the accused's
    /// response window (seconds).
    constructor(IJobMarket market, IVerifierRegistry registry, Params memory params) {
        uint256 size = params.committeeSize;
        if (size == 0 || size > MAX_COMMITTEE || size % 2 == 0) {
            revert DisputeResolverInvalidParameter("committeeSize");
        }
        if (
            params.drawWindow == 0 || params.commitWindow == 0 || params.revealWindow == 0
                || params.responseWindow == 0
        ) {
            revert DisputeResolverInvalidParameter("window");
        }
        if (uint256(params.bountyBps) + params.refereeFeeBps > _BPS || params.refereeSlashBps > _BPS) {
            revert DisputeResolverInvalidParameter("bps");
        }
        // a fee with no forced errors would fill a pool nothing ever pays out
        if (params.forcedErrorBps > _BPS || params.jackpotFeeBps > _BPS
                || (params.forcedErrorBps == 0 && params.jackpotFeeBps != 0)) {
            revert DisputeResolverInvalidParameter("forcedErrors");
        }
        uint256 longest =
            uint256(params.responseWindow) + params.drawWindow + params.commitWindow + params.revealWindow;
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
        _responseWindow = params.responseWindow;
        _forcedErrorBps = params.forcedErrorBps;
        _jackpotFeeBps = params.jackpotFeeBps;
        _counter.live = true;
    }

    // ------------------------------------------------------------------ opening

    /// @notice A registered verifier disputes `worker`'s result on task `taskId` at segment
    /// `j` (0 <= j < checkpointCount - 1), saying its replay gives `claimedNext` as `h_{j+1}`
    /// (kept in the event only). Nothing about the worker's root needs proving: the worker
    /// must {answer}. The claim may already be in dispute. Pulls `challengeBond` from the
    /// caller (approve the market). Returns the dispute id (from 1). Emits a {DisputeOpened}
    /// event (with `accusedNext` and `drawBlock` zero until the answer).
    function challenge(uint256 taskId, address worker, uint256 j, bytes32 claimedNext)
        external
        nonReentrant
        returns (uint256 disputeId)
    {
        return _challenge(taskId, worker, j, claimedNext, DisputeKind.Challenge);
    }

    /// @notice A forced job's claim opens its seed once its challenge window is over
    /// (`secret`, and `snap` the market sealed with it; docs/spec/forced.md). Anyone holding
    /// the secret may send it. Not selected: the claim may be finalized at once. Selected: `j*`
    /// is now public and the claim stays open to challenge one more window, in which
    /// {challengeOptOut} can show it published the real checkpoint instead of the forced one.
    /// A seed never opened is timed out by the market ({JobMarket-timeout}). Emits {SeedOpened}.
    function openSeed(uint256 taskId, address worker, bytes32 secret, bytes32 snap) external nonReentrant {
        bytes32 seal = _market.sealOf(taskId, worker);
        if (uint256(seal) & 1 != 0) revert DisputeResolverSeedOpened(taskId, worker);
        if (!_sealed(seal, secret, snap)) revert DisputeResolverBadSeed(taskId, worker);
        uint256 count = IJobMarketJobs(address(_market)).getJob(taskId >> 32).checkpointCount;
        (bool selected, uint256 forced) = _selection(secret, snap, count - 1);
        _market.openSeal(taskId, worker, selected);
        if (selected) _forcedAt[seal] = uint32(forced + 1);
        emit SeedOpened(taskId, worker, selected, uint32(forced));
    }

    /// @notice A registered verifier says an opened, selected claim published the real
    /// checkpoint `j* + 1` where it had to publish the forced one (the opt-out). The dispute is
    /// segment `j*` and runs as a challenge (answer, committee, settle) with the verdict turned
    /// round: referees that reproduce the accused's leaf `j* + 1` (or cannot get checkpoint
    /// `j*`) vote against it. Pulls `challengeBond`. Emits a {DisputeOpened} event whose
    /// `accuserNext` is {OPT_OUT}.
    function challengeOptOut(uint256 taskId, address worker) external nonReentrant returns (uint256 disputeId) {
        uint32 at = _forcedAt[bytes32(uint256(_market.sealOf(taskId, worker)) & ~uint256(1))];
        if (at == 0) revert DisputeResolverNotOptOut(taskId, worker);
        return _challenge(taskId, worker, at - 1, OPT_OUT, DisputeKind.OptOut);
    }

    function _challenge(uint256 taskId, address worker, uint256 j, bytes32 claimedNext, DisputeKind kind)
        private
        returns (uint256 disputeId)
    {
        if (!_registry.isActive(msg.sender)) revert DisputeResolverNotVerifier(msg.sender);
        if (worker == msg.sender) revert DisputeResolverSelfChallenge(worker);
        IJobMarket.DisputedClaim memory c = _market.openDispute(taskId, worker);
        if (j + 1 >= c.checkpointCount) revert DisputeResolverSegmentOutOfRange(j, c.checkpointCount);
        uint96 bond = _challengeBond;
        disputeId = _newId(bond);
        DisputeStore storage d = _disputes[disputeId];
        uint64 deadline = uint64(block.timestamp) + _responseWindow;
        // taskId < 2**64: job ids fit 32 bits (see {DisputeStore}); j + 1 < checkpointCount (uint32)
        (d.accused, d.taskId, d.segment) = (worker, uint64(taskId), uint32(j));
        (d.accuser, d.deadline, d.status) = (msg.sender, SafeCast.toUint32(deadline), DisputeStatus.Answering);
        d.kind = kind;
        emit DisputeOpened(disputeId, taskId, worker, msg.sender, false, uint32(j), 0, claimedNext, bond, 0);
        if (bond != 0) _market.collect(msg.sender, bond);
    }

    /// @notice A challenge by a registered verifier that holds the worker's leaves (it replayed
    /// from the worker's manifest): the proofs show `(j, h)` and `(j + 1, hNext)` in the
    /// worker's revealed root, and the verifier's replay gives `claimedNext != hNext`. No
    /// answer is needed: the dispute starts Drawing, from this block's hash. Pulls
    /// `challengeBond`. Returns the dispute id. Emits a {DisputeOpened} event.
    function challengeWithProof(uint256 taskId, address worker, Segment calldata seg, bytes32 claimedNext)
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
        disputeId = _open(taskId, worker, msg.sender, false, seg, claimedNext, bond);
        if (bond != 0) _market.collect(msg.sender, bond);
    }

    /// @notice Answer a challenge: the accused's leaves `(j, seg.h)` and `(j + 1, seg.hNext)`
    /// with their proofs in its revealed root, before the answer deadline. Anyone may send it
    /// (a proof cannot hurt the worker). The committee is then drawn from the hash of this
    /// transaction's block ({drawCommittee}). Emits a {DisputeAnswered} event.
    function answer(uint256 disputeId, Segment calldata seg) external {
        DisputeStore storage d = _inStatus(disputeId, DisputeStatus.Answering);
        if (block.timestamp > d.deadline) revert DisputeResolverDeadlinePassed(disputeId, d.deadline);
        if (seg.j != d.segment) revert DisputeResolverSegmentsDiffer();
        address accused = d.accused;
        _checkSegment(seg, _market.disputedClaim(d.taskId, accused), accused);
        uint64 drawBlock = uint64(block.number);
        uint64 deadline = uint64(block.timestamp) + _drawWindow;
        (d.deadline, d.drawBlockOrBallots, d.status) =
            (SafeCast.toUint32(deadline), uint40(drawBlock), DisputeStatus.Drawing);
        d.accusedNext = seg.hNext;
        emit DisputeAnswered(disputeId, seg.h, seg.hNext, drawBlock);
    }

    /// @notice The accused shows that the disputed result is a forced error (docs/spec/forced.md):
    /// `secret` opens its claim's seed, `snap` is the snapshot the market sealed with it, the
    /// draw selects the claim, and the disputed segment is `j*` or `j* + 1`. While Answering or
    /// Drawing, before that phase's deadline. The dispute settles at once, without a committee:
    /// the claim is released (its worker is paid as usual), the challenger's bond returns and
    /// the first challenger answered so on this claim gets the jackpot ({jackpotFor}). A
    /// dispute opened after that payment, or after the seed's opening, challenged a `j*`
    /// already public; its bond goes to the worker (else a griefer could re-challenge every
    /// window, for free, and the worker would never be paid). Not for an opt-out challenge.
    /// Emits {JackpotPaid} (when one is paid) and {DisputeSettled} (outcome Forced).
    function answerForced(uint256 disputeId, bytes32 secret, bytes32 snap) external nonReentrant {
        DisputeStore storage d = _disputes[disputeId];
        DisputeStatus status = d.status;
        if ((status != DisputeStatus.Answering && status != DisputeStatus.Drawing) || d.kind != DisputeKind.Challenge) {
            revert DisputeResolverWrongStatus(disputeId, status);
        }
        if (block.timestamp > d.deadline) revert DisputeResolverDeadlinePassed(disputeId, d.deadline);
        bytes32 seal = _checkForced(disputeId, d, secret, snap);
        (uint256 taskId, address worker, address to) = (d.taskId, d.accused, d.accuser);
        bool opened = uint256(seal) & 1 != 0; // j* public since the opening: no jackpot
        seal = bytes32(uint256(seal) & ~uint256(1));
        uint64 paidAt = _jackpotPaidAt[seal];
        uint256 amount = _challengeBond;
        if (opened) {
            to = worker;
        } else if (paidAt == 0) {
            uint256 prize = jackpotFor(taskId >> 32); // before the bond leaves the open bonds
            _jackpotPaidAt[seal] = _counter.count;
            amount += prize;
            emit JackpotPaid(disputeId, to, prize);
        } else if (disputeId > paidAt) {
            to = worker;
        }
        (d.status, d.outcome, d.drawBlockOrBallots) = (DisputeStatus.Settled, Outcome.Forced, 0);
        _closeBond(d);
        _market.releaseClaim(taskId, worker);
        if (amount != 0) _market.credit(to, amount);
        emit DisputeSettled(disputeId, Outcome.Forced, BallotState.None, 0);
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
        disputeId = _open(taskId, workerA, workerB, true, segA, segB.hNext, 0);
    }

    // ------------------------------------------------------------------ committee

    /// @notice Draw the committee from `blockhash(drawBlock)` (anyone, once that block is
    /// mined). If the hash is no longer available, reschedules to the next block instead
    /// (emits {DrawRescheduled}). Emits a {CommitteeDrawn} event.
    /// If the pool holds fewer than `committeeSize` eligible verifiers, the dispute is
    /// dismissed at once (bond returned, claims released; {DisputeSettled}).
    function drawCommittee(uint256 disputeId) external {
        DisputeStore storage d = _inStatus(disputeId, DisputeStatus.Drawing);
        if (block.timestamp > d.deadline) revert DisputeResolverDeadlinePassed(disputeId, d.deadline);
        uint64 drawBlock = d.drawBlockOrBallots;
        if (block.number <= drawBlock) revert DisputeResolverTooEarly(disputeId, drawBlock);
        bytes32 seed = blockhash(drawBlock);
        if (seed == bytes32(0)) {
            d.drawBlockOrBallots = uint40(block.number); // the hash of this block: known from the next
            emit DrawRescheduled(disputeId, uint64(block.number));
            return;
        }
        uint64 commitDeadline = uint64(block.timestamp) + _commitWindow;
        (address[] memory chosen, bool full) =
            _draw(keccak256(abi.encode(seed, disputeId)), d, commitDeadline + _revealWindow);
        if (!full) {
            _settleUndrawn(disputeId, d, Outcome.Dismissed);
            return;
        }
        _storeCommittee(disputeId, chosen);
        (d.status, d.deadline, d.drawBlockOrBallots) = (DisputeStatus.Voting, SafeCast.toUint32(commitDeadline), 0);
        emit CommitteeDrawn(disputeId, chosen, commitDeadline, commitDeadline + _revealWindow);
    }

    /// @notice The job's requester, or a worker party to the dispute (it holds the data key
    /// too, so a requester cannot starve referees of keys to hurt an honest worker), delivers
    /// the data key wrapped to a drawn referee's public key. Emits a {RefereeKeyDelivered} event.
    function deliverRefereeKey(uint256 disputeId, address referee, bytes calldata envelope) external {
        DisputeStore storage d = _inStatus(disputeId, DisputeStatus.Voting);
        bool holder = msg.sender == d.accused || (d.kind == DisputeKind.Workers && msg.sender == d.accuser)
            || msg.sender == _market.requesterOf(uint256(d.taskId) >> 32);
        if (!holder) revert DisputeResolverNotKeyHolder(disputeId, msg.sender);
        _seatOf(disputeId, referee);
        emit RefereeKeyDelivered(disputeId, referee, envelope);
    }

    /// @notice The referee in `seat` commits `keccak256(abi.encode(voteHash, msg.sender, salt))`
    /// before the commit deadline. Emits a {VoteCommitted} event.
    function commitVote(uint256 disputeId, uint256 seat, bytes32 commitment) external {
        DisputeStore storage d = _inStatus(disputeId, DisputeStatus.Voting);
        if (block.timestamp > d.deadline) revert DisputeResolverDeadlinePassed(disputeId, d.deadline);
        if (seat >= _committeeSize || _refereeAt(disputeId, seat) != msg.sender) {
            revert DisputeResolverNotReferee(disputeId, msg.sender);
        }
        uint40 states = d.drawBlockOrBallots;
        BallotState state = _stateAt(states, seat);
        if (state != BallotState.None) revert DisputeResolverBallotState(disputeId, msg.sender, state);
        d.drawBlockOrBallots = _withState(states, seat, BallotState.Committed);
        _commitments[disputeId][seat] = commitment;
        emit VoteCommitted(disputeId, msg.sender, commitment);
    }

    /// @notice Reveal the vote committed in `seat`: the `h_{j+1}` the referee's replay produced,
    /// or UNAVAILABLE. Opens once all referees committed or the commit deadline passed. The
    /// commitment binds the caller's address, so only the referee of `seat` can reveal it.
    /// Emits a {VoteRevealed} event.
    function revealVote(uint256 disputeId, uint256 seat, bytes32 voteHash, bytes32 salt) external {
        DisputeStore storage d = _inStatus(disputeId, DisputeStatus.Voting);
        if (seat >= _committeeSize) revert DisputeResolverNotReferee(disputeId, msg.sender);
        uint40 states = d.drawBlockOrBallots;
        BallotState state = _stateAt(states, seat);
        if (state != BallotState.Committed) revert DisputeResolverBallotState(disputeId, msg.sender, state);
        _checkRevealOpen(disputeId, d, states);
        if (keccak256(abi.encode(voteHash, msg.sender, salt)) != _commitments[disputeId][seat]) {
            revert DisputeResolverCommitMismatch(disputeId, msg.sender);
        }
        delete _commitments[disputeId][seat];
        BallotState vote = _classify(d, voteHash);
        d.drawBlockOrBallots = _withState(states, seat, vote);
        emit VoteRevealed(disputeId, msg.sender, voteHash, vote);
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

    /// @notice Settle a dispute (anyone): while Answering, after the answer deadline (the
    /// accused lost); while Drawing, after the draw deadline (Lapsed); while Voting, once every
    /// referee revealed or after the reveal deadline. Emits a {DisputeSettled} event.
    function settle(uint256 disputeId) external nonReentrant {
        DisputeStore storage d = _disputes[disputeId];
        DisputeStatus status = d.status;
        if (status == DisputeStatus.Answering || status == DisputeStatus.Drawing) {
            if (block.timestamp <= d.deadline) revert DisputeResolverTooEarly(disputeId, d.deadline);
            _settleUndrawn(disputeId, d, status == DisputeStatus.Answering ? Outcome.AccusedLost : Outcome.Lapsed);
            return;
        }
        uint256 seats = _seatsIfSettleable(disputeId, d);
        uint40 states = d.drawBlockOrBallots;
        d.status = DisputeStatus.Settled;
        _closeBond(d);
        (BallotState verdict, bool decided) = _tally(states, seats);
        Payout memory p = Payout(new address[](seats + 2), new uint256[](seats + 2), 0, 0, 0);
        address[] memory referees = _referees(disputeId, seats);
        p.pot = _slashReferees(referees, states, verdict, decided);
        Outcome outcome;
        if (decided) {
            outcome = _decide(d, p, verdict);
            _payMajority(p, referees, states, verdict);
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
        (r.taskId, r.accused, r.segment, r.accuser) = (d.taskId, d.accused, d.segment, d.accuser);
        (r.deadline, r.status, r.outcome) = (d.deadline, d.status, d.outcome);
        r.accuserIsWorker = d.kind == DisputeKind.Workers;
        (r.accusedNext, r.accuserNext) = (d.accusedNext, d.kind == DisputeKind.OptOut ? OPT_OUT : d.accuserNext);
        if (r.status == DisputeStatus.Drawing) r.drawBlock = d.drawBlockOrBallots;
        if (r.status != DisputeStatus.None) r.requester = _market.requesterOf(r.taskId >> 32);
        bool held = !r.accuserIsWorker && r.status != DisputeStatus.None && r.status != DisputeStatus.Settled;
        if (held) r.bond = _challengeBond;
    }

    /// @notice The committee with each seat's ballot state and its commitment (zero before
    /// the commit and after the reveal).
    function getBallots(uint256 disputeId)
        external
        view
        returns (address[] memory referees, BallotState[] memory states, bytes32[] memory commitments)
    {
        uint256 n = _committee[disputeId][0] == 0 ? 0 : _committeeSize;
        referees = _referees(disputeId, n);
        states = new BallotState[](n);
        commitments = new bytes32[](n);
        uint40 bits = _disputes[disputeId].drawBlockOrBallots;
        for (uint256 i = 0; i < n; ++i) {
            states[i] = _stateAt(bits, i);
            commitments[i] = _commitments[disputeId][i];
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
            _refereeSlashBps,
            _responseWindow,
            _forcedErrorBps,
            _jackpotFeeBps
        );
    }

    /// @notice `forcedErrorBps` and `jackpotFeeBps` (the market reads them when wired).
    function forcedErrorParams() external view returns (uint16, uint16) {
        return (_forcedErrorBps, _jackpotFeeBps);
    }

    /// @notice The jackpot pool: what the market holds for this resolver beyond open bonds.
    function jackpot() public view returns (uint256) {
        return _forcedErrorBps == 0 ? 0 : _market.heldBy(address(this)) - _counter.openBonds;
    }

    /// @notice A forced error's jackpot for job `jobId`: its reward per task times
    /// `jackpotFeeBps / forcedErrorBps` (so the fee funds it on average), capped by the pool.
    function jackpotFor(uint256 jobId) public view returns (uint256 amount) {
        if (_forcedErrorBps == 0) return 0;
        uint256 reward = IJobMarketJobs(address(_market)).getJob(jobId).rewardPerTask;
        amount = (reward * _jackpotFeeBps) / _forcedErrorBps;
        uint256 pool = jackpot();
        if (amount > pool) amount = pool;
    }

    /// @notice Challenge bonds currently held for open disputes. The market holds these and
    /// the jackpot pool for this resolver between transactions (fees and slashed stakes pass
    /// through within `settle`).
    function totalBonds() external view returns (uint256) {
        return _forcedErrorBps == 0 ? _market.heldBy(address(this)) : _counter.openBonds;
    }

    function market() external view returns (address) {
        return address(_market);
    }

    function registry() external view returns (address) {
        return address(_registry);
    }

    // ------------------------------------------------------------------ internal

    /// @dev A new dispute id; `bond` (zero between workers) joins the open bonds, which are
    /// counted only where forced errors are on (they alone need the pool told apart from the
    /// bonds), so a network without them pays nothing for it.
    function _newId(uint96 bond) private returns (uint256 disputeId) {
        // cannot overflow: one dispute per transaction, 2**64 transactions will never happen
        unchecked {
            disputeId = ++_counter.count;
        }
        if (_forcedErrorBps != 0) _counter.openBonds += bond;
    }

    /// @dev Reverts unless `secret` and `snap` open the accused claim's seal, the draw selects
    /// it, and the dispute's segment is `j*` or `j* + 1` (docs/spec/forced.md). Returns the seal.
    function _checkForced(uint256 disputeId, DisputeStore storage d, bytes32 secret, bytes32 snap)
        private
        view
        returns (bytes32 seal)
    {
        (uint256 taskId, address worker) = (d.taskId, d.accused);
        seal = _market.sealOf(taskId, worker);
        if (!_sealed(seal, secret, snap)) revert DisputeResolverBadSecret(disputeId);
        uint256 segments = _market.disputedClaim(taskId, worker).checkpointCount - 1;
        (bool selected, uint256 forced) = _selection(secret, snap, segments);
        if (!selected) revert DisputeResolverNotSelected(disputeId);
        uint256 j = d.segment;
        if (j != forced && j != forced + 1) {
            revert DisputeResolverNotForcedSegment(disputeId, j, forced);
        }
    }

    /// @dev Whether `secret` and `snap` open `seal` (its lowest bit, the opened flag, aside).
    function _sealed(bytes32 seal, bytes32 secret, bytes32 snap) private pure returns (bool) {
        uint256 seed = uint256(keccak256(abi.encode(secret))) >> 64;
        return seal != 0 && (uint256(keccak256(abi.encode(seed, snap))) | 1) == (uint256(seal) | 1);
    }

    /// @dev The draw of docs/spec/forced.md: selected, and `j*` (zero when not selected).
    function _selection(bytes32 secret, bytes32 snap, uint256 segments)
        private
        view
        returns (bool selected, uint256 forced)
    {
        uint256 draw = uint256(keccak256(abi.encode(secret, snap)));
        selected = snap != 0 && segments >= 2 && draw % _BPS < _forcedErrorBps;
        if (selected) forced = (draw >> 128) % (segments - 1);
    }

    /// @dev A bonded dispute settles: its bond leaves the open bonds (paid out by the caller).
    function _closeBond(DisputeStore storage d) private {
        if (_forcedErrorBps != 0 && d.kind != DisputeKind.Workers) _counter.openBonds -= _challengeBond;
    }

    /// @dev For an even `j` the two leaves are siblings, so `proofNext` may be left empty: leaf
    /// `j`'s proof then starts with leaf `j + 1`, and one proof shows both (half the calldata).
    function _checkSegment(Segment calldata seg, IJobMarket.DisputedClaim memory c, address worker) private pure {
        if (seg.j + 1 >= c.checkpointCount) revert DisputeResolverSegmentOutOfRange(seg.j, c.checkpointCount);
        if (!MerkleProof.verifyCalldata(seg.proof, c.root, keccak256(abi.encode(seg.j, seg.h)))) {
            revert DisputeResolverBadProof(worker, seg.j);
        }
        bytes32 nextLeaf = keccak256(abi.encode(seg.j + 1, seg.hNext));
        bool shared = seg.proofNext.length == 0 && seg.j % 2 == 0 && seg.proof.length != 0 && seg.proof[0] == nextLeaf;
        if (!shared && !MerkleProof.verifyCalldata(seg.proofNext, c.root, nextLeaf)) {
            revert DisputeResolverBadProof(worker, seg.j + 1);
        }
    }

    function _open(
        uint256 taskId,
        address accused,
        address accuser,
        bool accuserIsWorker,
        Segment calldata seg,
        bytes32 accuserNext,
        uint96 bond
    ) private returns (uint256 disputeId) {
        disputeId = _newId(bond);
        DisputeStore storage d = _disputes[disputeId];
        uint64 drawBlock = uint64(block.number);
        uint64 deadline = uint64(block.timestamp) + _drawWindow;
        // taskId < 2**64: job ids fit 32 bits (see {DisputeStore}); j + 1 < checkpointCount (uint32)
        (d.accused, d.taskId, d.segment) = (accused, uint64(taskId), uint32(seg.j));
        (d.accuser, d.deadline, d.drawBlockOrBallots) = (accuser, SafeCast.toUint32(deadline), uint40(drawBlock));
        (d.status, d.kind) = (DisputeStatus.Drawing, accuserIsWorker ? DisputeKind.Workers : DisputeKind.Challenge);
        d.accusedNext = seg.hNext;
        // a challenger's h_{j+1} never decides anything: the event keeps it (see {Dispute})
        if (accuserIsWorker) d.accuserNext = accuserNext;
        emit DisputeOpened(
            disputeId, taskId, accused, accuser, accuserIsWorker, uint32(seg.j), seg.hNext, accuserNext, bond, drawBlock
        );
    }

    /// @dev Reverts unless votes may be revealed now: every referee committed or the commit
    /// deadline passed, and the reveal deadline has not passed.
    function _checkRevealOpen(uint256 disputeId, DisputeStore storage d, uint40 states) private view {
        uint256 deadline = d.deadline;
        if (block.timestamp <= deadline && !_allAtLeast(states, BallotState.Committed)) {
            revert DisputeResolverTooEarly(disputeId, deadline);
        }
        uint256 revealDeadline = deadline + _revealWindow;
        if (block.timestamp > revealDeadline) revert DisputeResolverDeadlinePassed(disputeId, revealDeadline);
    }

    /// @dev What a revealed `voteHash` says about the parties.
    /// An opt-out challenge asks the opposite: a replay that reproduces the accused's leaf
    /// j*+1 shows it published the real checkpoint where it had to publish a forced one, so it
    /// counts Against the accused (as does UNAVAILABLE); any other hash is ForAccused.
    function _classify(DisputeStore storage d, bytes32 voteHash) private view returns (BallotState) {
        DisputeKind kind = d.kind;
        if (voteHash == UNAVAILABLE) return BallotState.Against;
        bool reproduced = voteHash == d.accusedNext;
        if (kind == DisputeKind.OptOut) return reproduced ? BallotState.Against : BallotState.ForAccused;
        if (reproduced) return BallotState.ForAccused;
        if (kind == DisputeKind.Workers && voteHash == d.accuserNext) return BallotState.ForAccuser;
        return BallotState.Against;
    }

    /// @dev Random picks first, then a scan from a random offset, so the draw succeeds
    /// whenever enough eligible verifiers exist (see {IVerifierRegistry-drawReferees}; the pool
    /// is read where it is stored, in one call).
    function _draw(bytes32 seed, DisputeStore storage d, uint256 voteEnds)
        private
        returns (address[] memory chosen, bool full)
    {
        uint256 size = _committeeSize;
        uint256 count;
        address requester = _market.requesterOf(uint256(d.taskId) >> 32);
        (chosen, count) = _registry.drawReferees(seed, size, [d.accused, d.accuser, requester], voteEnds);
        full = count == size;
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

    /// @dev The referee in `seat` (bits [160 seat, 160 seat + 160) of the committee words).
    function _refereeAt(uint256 disputeId, uint256 seat) private view returns (address) {
        mapping(uint256 => uint256) storage words = _committee[disputeId];
        uint256 bit = seat * 160;
        uint256 off = bit & 255;
        uint256 value = words[bit >> 8] >> off;
        if (off > 96) value |= words[(bit >> 8) + 1] << (256 - off);
        return address(uint160(value));
    }

    function _seatOf(uint256 disputeId, address referee) private view returns (uint256) {
        uint256 n = _committeeSize;
        for (uint256 i = 0; i < n; ++i) {
            if (_refereeAt(disputeId, i) == referee) return i;
        }
        revert DisputeResolverNotReferee(disputeId, referee);
    }

    /// @dev The whole committee of a dispute that reached Voting (`n` seats; 0 if never drawn).
    function _referees(uint256 disputeId, uint256 n) private view returns (address[] memory referees) {
        referees = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            referees[i] = _refereeAt(disputeId, i);
        }
    }

    function _stateAt(uint40 states, uint256 seat) private pure returns (BallotState) {
        return BallotState((states >> (3 * seat)) & 7);
    }

    function _withState(uint40 states, uint256 seat, BallotState state) private pure returns (uint40) {
        return (states & ~(uint40(7) << (3 * seat))) | (uint40(uint8(state)) << (3 * seat));
    }

    function _revealed(BallotState state) private pure returns (bool) {
        return state >= BallotState.ForAccused;
    }

    function _allAtLeast(uint40 states, BallotState state) private view returns (bool) {
        uint256 n = _committeeSize;
        for (uint256 i = 0; i < n; ++i) {
            if (_stateAt(states, i) < state) return false;
        }
        return true;
    }

    /// @dev The vote more than half of the `seats` revealed, if any.
    function _tally(uint40 states, uint256 seats) private pure returns (BallotState verdict, bool decided) {
        uint256[5] memory count;
        for (uint256 i = 0; i < seats; ++i) {
            ++count[uint256(_stateAt(states, i))];
        }
        for (uint256 v = uint256(BallotState.ForAccused); v <= uint256(BallotState.Against); ++v) {
            if (count[v] * 2 > seats) return (BallotState(v), true);
        }
        return (BallotState.None, false);
    }

    /// @dev Reverts unless a Voting dispute may be settled now; the number of seats.
    function _seatsIfSettleable(uint256 disputeId, DisputeStore storage d) private view returns (uint256) {
        DisputeStatus status = d.status;
        if (status != DisputeStatus.Voting) revert DisputeResolverWrongStatus(disputeId, status);
        uint256 revealDeadline = uint256(d.deadline) + _revealWindow;
        if (block.timestamp <= revealDeadline && !_allAtLeast(d.drawBlockOrBallots, BallotState.ForAccused)) {
            revert DisputeResolverTooEarly(disputeId, revealDeadline);
        }
        return _committeeSize;
    }

    /// @dev A verdict exists: who lost, their stakes or bond, the referee fee; the outcome.
    function _decide(DisputeStore storage d, Payout memory p, BallotState verdict) private returns (Outcome) {
        p.pot += _market.takeRefereeFee(uint256(d.taskId) >> 32);
        bool isWorker = d.kind == DisputeKind.Workers;
        (address accused, address accuser) = (d.accused, d.accuser);
        bool accusedLost = verdict != BallotState.ForAccused;
        bool accuserLost = isWorker ? verdict != BallotState.ForAccuser : !accusedLost;
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
    function _slashReferees(address[] memory referees, uint40 states, BallotState verdict, bool decided)
        private
        returns (uint256 pot)
    {
        for (uint256 i = 0; i < referees.length; ++i) {
            BallotState vote = _stateAt(states, i);
            if (_revealed(vote) && (!decided || vote == verdict)) continue;
            address referee = referees[i];
            uint256 amount = (_registry.stakeOf(referee) * _refereeSlashBps) / _BPS;
            if (amount != 0) pot += _registry.slash(referee, amount);
        }
    }

    /// @dev Settle a dispute no committee was drawn for: unanswered (AccusedLost: the accused's
    /// stake is slashed, bounty to the challenger, its bond back, the referee share to the
    /// escrow), Lapsed (claims released; a challenger's bond to the job's escrow) or Dismissed
    /// (no committee could be drawn: claims released, bond back).
    function _settleUndrawn(uint256 disputeId, DisputeStore storage d, Outcome outcome) private {
        (d.status, d.outcome, d.drawBlockOrBallots) = (DisputeStatus.Settled, outcome, 0);
        _closeBond(d);
        Payout memory p = Payout(new address[](2), new uint256[](2), 0, 0, 0);
        uint256 bond = _bondOf(d);
        if (outcome == Outcome.AccusedLost) {
            _slashWorker(d, p, d.accused, d.accuser);
            _pay(p, d.accuser, bond);
            p.toEscrow += p.pot;
        } else {
            _market.releaseClaim(d.taskId, d.accused);
            if (d.kind == DisputeKind.Workers) _market.releaseClaim(d.taskId, d.accuser);
            else if (outcome == Outcome.Lapsed) p.toEscrow += bond;
            else _pay(p, d.accuser, bond);
        }
        _payOut(p, uint256(d.taskId) >> 32);
        emit DisputeSettled(disputeId, outcome, BallotState.None, 0);
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
            _pay(p, winner, bounty);
        }
        p.toEscrow += rest;
    }

    /// @dev A losing challenger's bond: referee share to the pot, rest to the worker.
    function _forfeitBond(DisputeStore storage d, Payout memory p) private {
        uint256 bond = _bondOf(d);
        uint256 refShare = (bond * _refereeFeeBps) / _BPS;
        p.pot += refShare;
        _pay(p, d.accused, bond - refShare);
    }

    /// @dev A party that did not lose: a worker's claim is released; a challenger's bond returns.
    function _upheld(DisputeStore storage d, Payout memory p, address party, bool isWorker) private {
        if (isWorker || d.kind == DisputeKind.Workers) {
            _market.releaseClaim(d.taskId, party);
        } else {
            _pay(p, party, _bondOf(d));
        }
    }

    /// @dev The bond the accuser posted: `challengeBond` for a challenge, none between workers.
    /// A settlement pays it out exactly once: {_upheld} returns it to a challenger that did not
    /// lose, {_forfeitBond} splits it when the challenger lost.
    function _bondOf(DisputeStore storage d) private view returns (uint256) {
        return d.kind == DisputeKind.Workers ? 0 : _challengeBond;
    }

    function _payMajority(Payout memory p, address[] memory referees, uint40 states, BallotState verdict)
        private
        pure
    {
        uint256 winners;
        for (uint256 i = 0; i < referees.length; ++i) {
            if (_stateAt(states, i) == verdict) ++winners;
        }
        uint256 share = p.pot / winners;
        for (uint256 i = 0; i < referees.length && share != 0; ++i) {
            if (_stateAt(states, i) == verdict) _pay(p, referees[i], share);
        }
        p.toEscrow += p.pot - share * winners;
    }

    function _pay(Payout memory p, address to, uint256 amount) private pure {
        if (amount == 0) return;
        uint256 last = p.count;
        if (last != 0 && p.to[last - 1] == to) {
            // a challenger's bounty and returned bond: one credit
            p.amounts[last - 1] += amount;
            return;
        }
        p.to[p.count] = to;
        p.amounts[p.count] = amount;
        ++p.count;
    }

    function _inStatus(uint256 disputeId, DisputeStatus status) private view returns (DisputeStore storage d) {
        d = _disputes[disputeId];
        if (d.status != status) revert DisputeResolverWrongStatus(disputeId, d.status);
    }
}
