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
    /// while Voting (the reveal deadline is `deadline + revealWindow`).
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

    struct Seat {
        address referee;
        BallotState state;
    }

    /// @notice The vote meaning "could not fetch checkpoint j"; counts against the worker.
    bytes32 public constant UNAVAILABLE = bytes32(0);
    uint256 private constant _BPS = 10_000;

    IJobMarket private immutable _market;
    IVerifierRegistry private immutable _registry;
    Params private _params;

    uint256 private _disputeCount;
    mapping(uint256 disputeId => Dispute) private _disputes;
    mapping(uint256 disputeId => Seat[]) private _seats;
    mapping(uint256 disputeId => mapping(uint256 seat => bytes32)) private _ballots;
    uint256 private _totalBonds;

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
        _params = params;
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
        uint96 bond = _params.challengeBond;
        disputeId = _open(taskId, worker, msg.sender, false, c.requester, seg, claimedNext, bond);
        if (bond != 0) {
            _totalBonds += bond;
            _market.collect(msg.sender, bond);
        }
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
        Dispute storage d = _inStatus(disputeId, DisputeStatus.Drawing);
        if (block.timestamp > d.deadline) revert DisputeResolverDeadlinePassed(disputeId, d.deadline);
        if (block.number <= d.drawBlock) revert DisputeResolverTooEarly(disputeId, d.drawBlock);
        bytes32 seed = blockhash(d.drawBlock);
        if (seed == bytes32(0)) {
            d.drawBlock = uint64(block.number); // the hash of this block: known from the next
            emit DrawRescheduled(disputeId, d.drawBlock);
            return;
        }
        address[] memory chosen = _draw(keccak256(abi.encode(seed, disputeId)), d);
        Seat[] storage seats = _seats[disputeId];
        for (uint256 i = 0; i < chosen.length; ++i) {
            seats.push(Seat(chosen[i], BallotState.None));
        }
        uint64 commitDeadline = uint64(block.timestamp) + _params.commitWindow;
        d.status = DisputeStatus.Voting;
        d.deadline = commitDeadline;
        emit CommitteeDrawn(disputeId, chosen, commitDeadline, commitDeadline + _params.revealWindow);
    }

    /// @notice The job's requester, or a worker party to the dispute (it holds the data key
    /// too, so a requester cannot starve referees of keys to hurt an honest worker), delivers
    /// the data key wrapped to a drawn referee's public key. Emits a {RefereeKeyDelivered} event.
    function deliverRefereeKey(uint256 disputeId, address referee, bytes calldata envelope) external {
        Dispute storage d = _inStatus(disputeId, DisputeStatus.Voting);
        bool holder = msg.sender == d.requester || msg.sender == d.accused
            || (d.accuserIsWorker && msg.sender == d.accuser);
        if (!holder) revert DisputeResolverNotKeyHolder(disputeId, msg.sender);
        _seatOf(disputeId, referee);
        emit RefereeKeyDelivered(disputeId, referee, envelope);
    }

    /// @notice A drawn referee commits `keccak256(abi.encode(voteHash, msg.sender, salt))`
    /// before the commit deadline. Emits a {VoteCommitted} event.
    function commitVote(uint256 disputeId, bytes32 commitment) external {
        Dispute storage d = _inStatus(disputeId, DisputeStatus.Voting);
        if (block.timestamp > d.deadline) revert DisputeResolverDeadlinePassed(disputeId, d.deadline);
        (uint256 index, Seat storage seat) = _seatOf(disputeId, msg.sender);
        if (seat.state != BallotState.None) revert DisputeResolverBallotState(disputeId, msg.sender, seat.state);
        seat.state = BallotState.Committed;
        _ballots[disputeId][index] = commitment;
        emit VoteCommitted(disputeId, msg.sender, commitment);
    }

    /// @notice Reveal the committed vote: the `h_{j+1}` the referee's replay produced, or
    /// UNAVAILABLE. Opens once all referees committed or the commit deadline passed.
    /// Emits a {VoteRevealed} event.
    function revealVote(uint256 disputeId, bytes32 voteHash, bytes32 salt) external {
        Dispute storage d = _inStatus(disputeId, DisputeStatus.Voting);
        (uint256 index, Seat storage seat) = _seatOf(disputeId, msg.sender);
        if (seat.state != BallotState.Committed) revert DisputeResolverBallotState(disputeId, msg.sender, seat.state);
        if (block.timestamp <= d.deadline && !_allAtLeast(disputeId, BallotState.Committed)) {
            revert DisputeResolverTooEarly(disputeId, d.deadline);
        }
        uint256 revealDeadline = uint256(d.deadline) + _params.revealWindow;
        if (block.timestamp > revealDeadline) revert DisputeResolverDeadlinePassed(disputeId, revealDeadline);
        if (keccak256(abi.encode(voteHash, msg.sender, salt)) != _ballots[disputeId][index]) {
            revert DisputeResolverCommitMismatch(disputeId, msg.sender);
        }
        seat.state = BallotState.Revealed;
        _ballots[disputeId][index] = voteHash;
        emit VoteRevealed(disputeId, msg.sender, voteHash);
    }

    // ------------------------------------------------------------------ settlement

    /// @notice Settle a dispute (anyone): while Drawing, after the draw deadline (dismissed);
    /// while Voting, once every referee revealed or after the reveal deadline.
    /// Emits a {DisputeSettled} event.
    function settle(uint256 disputeId) external nonReentrant {
        Dispute storage d = _disputes[disputeId];
        if (d.status == DisputeStatus.Drawing) {
            if (block.timestamp <= d.deadline) revert DisputeResolverTooEarly(disputeId, d.deadline);
        } else if (d.status == DisputeStatus.Voting) {
            uint256 revealDeadline = uint256(d.deadline) + _params.revealWindow;
            if (block.timestamp <= revealDeadline && !_allAtLeast(disputeId, BallotState.Revealed)) {
                revert DisputeResolverTooEarly(disputeId, revealDeadline);
            }
        } else {
            revert DisputeResolverWrongStatus(disputeId, d.status);
        }
        d.status = DisputeStatus.Settled;
        (bytes32 verdict, bool decided) = _tally(disputeId);
        uint256 jobId = d.taskId >> 32;
        uint256 pot = _slashReferees(disputeId, verdict, decided);
        Outcome outcome;
        if (!decided) {
            outcome = Outcome.Dismissed;
            _upheld(d, d.accused, true);
            _upheld(d, d.accuser, false);
            if (pot != 0) _market.creditEscrow(jobId, pot);
        } else {
            pot += _market.takeRefereeFee(jobId);
            bool accusedLost = verdict != d.accusedNext;
            bool accuserLost = d.accuserIsWorker ? verdict != d.accuserNext : !accusedLost;
            outcome = accusedLost
                ? (accuserLost ? Outcome.BothLost : Outcome.AccusedLost)
                : Outcome.AccuserLost;
            pot += accusedLost ? _slashWorker(d, d.accused, accuserLost ? address(0) : d.accuser) : _upheld(d, d.accused, true);
            if (accuserLost) {
                pot += d.accuserIsWorker
                    ? _slashWorker(d, d.accuser, accusedLost ? address(0) : d.accused)
                    : _forfeitBond(d);
            } else {
                _upheld(d, d.accuser, false);
            }
            _payMajority(disputeId, verdict, pot, jobId);
        }
        d.outcome = outcome;
        emit DisputeSettled(disputeId, outcome, verdict, pot);
    }

    // ------------------------------------------------------------------ views

    function getDispute(uint256 disputeId) external view returns (Dispute memory) {
        return _disputes[disputeId];
    }

    /// @notice The committee with each referee's ballot state and ballot (commitment while
    /// Committed, vote once Revealed).
    function getBallots(uint256 disputeId)
        external
        view
        returns (address[] memory referees, BallotState[] memory states, bytes32[] memory ballots)
    {
        Seat[] storage seats = _seats[disputeId];
        referees = new address[](seats.length);
        states = new BallotState[](seats.length);
        ballots = new bytes32[](seats.length);
        for (uint256 i = 0; i < seats.length; ++i) {
            referees[i] = seats[i].referee;
            states[i] = seats[i].state;
            ballots[i] = _ballots[disputeId][i];
        }
    }

    function disputeCount() external view returns (uint256) {
        return _disputeCount;
    }

    function params() external view returns (Params memory) {
        return _params;
    }

    /// @notice Challenge bonds currently held for open disputes.
    function totalBonds() external view returns (uint256) {
        return _totalBonds;
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
        disputeId = ++_disputeCount;
        Dispute storage d = _disputes[disputeId];
        uint64 drawBlock = uint64(block.number);
        d.taskId = taskId;
        d.accused = accused;
        d.segment = uint32(seg.j);
        d.drawBlock = drawBlock;
        d.accuser = accuser;
        d.bond = bond;
        d.requester = requester;
        d.deadline = uint64(block.timestamp) + _params.drawWindow;
        d.status = DisputeStatus.Drawing;
        d.accuserIsWorker = accuserIsWorker;
        d.accusedNext = seg.hNext;
        d.accuserNext = accuserNext;
        emit DisputeOpened(
            disputeId, taskId, accused, accuser, accuserIsWorker, uint32(seg.j), seg.hNext, accuserNext, bond, drawBlock
        );
    }

    /// @dev Random picks first, then a scan from a random offset, so the draw succeeds
    /// whenever enough eligible verifiers exist.
    function _draw(bytes32 seed, Dispute storage d) private view returns (address[] memory chosen) {
        uint256 size = _params.committeeSize;
        uint256 n = _registry.poolSize();
        chosen = new address[](size);
        uint256 count;
        if (n == 0) revert DisputeResolverPoolTooSmall(0, size);
        for (uint256 attempt = 0; attempt < 2 * size && count < size; ++attempt) {
            address cand = _registry.poolAt(uint256(keccak256(abi.encode(seed, attempt))) % n);
            if (_eligible(cand, d, chosen, count)) chosen[count++] = cand;
        }
        uint256 start = uint256(seed) % n;
        for (uint256 k = 0; k < n && count < size; ++k) {
            address cand = _registry.poolAt((start + k) % n);
            if (_eligible(cand, d, chosen, count)) chosen[count++] = cand;
        }
        if (count < size) revert DisputeResolverPoolTooSmall(count, size);
    }

    function _eligible(address cand, Dispute storage d, address[] memory chosen, uint256 count)
        private
        view
        returns (bool)
    {
        if (cand == d.accused || cand == d.accuser || cand == d.requester) return false;
        for (uint256 i = 0; i < count; ++i) {
            if (chosen[i] == cand) return false;
        }
        return true;
    }

    /// @dev The hash more than half of the committee revealed, if any.
    function _tally(uint256 disputeId) private view returns (bytes32 verdict, bool decided) {
        Seat[] storage seats = _seats[disputeId];
        uint256 n = seats.length;
        for (uint256 i = 0; i < n; ++i) {
            if (seats[i].state != BallotState.Revealed) continue;
            bytes32 vote = _ballots[disputeId][i];
            uint256 count = 1;
            for (uint256 k = i + 1; k < n; ++k) {
                if (seats[k].state == BallotState.Revealed && _ballots[disputeId][k] == vote) ++count;
            }
            if (count * 2 > n) return (vote, true);
        }
        return (bytes32(0), false);
    }

    /// @dev Slash referees that did not reveal or voted against the verdict; returns the total.
    function _slashReferees(uint256 disputeId, bytes32 verdict, bool decided) private returns (uint256 pot) {
        Seat[] storage seats = _seats[disputeId];
        for (uint256 i = 0; i < seats.length; ++i) {
            bool faithful = seats[i].state == BallotState.Revealed
                && (!decided || _ballots[disputeId][i] == verdict);
            if (faithful) continue;
            address referee = seats[i].referee;
            uint256 amount = (_registry.stakeOf(referee) * _params.refereeSlashBps) / _BPS;
            if (amount != 0) pot += _registry.slash(referee, amount);
        }
    }

    /// @dev Slash a losing worker's stake: referee share to the pot (returned), bounty to
    /// `winner` (none if zero), rest to the job's escrow.
    function _slashWorker(Dispute storage d, address worker, address winner) private returns (uint256 refShare) {
        uint256 stake = _market.slashClaim(d.taskId, worker);
        refShare = (stake * _params.refereeFeeBps) / _BPS;
        uint256 rest = stake - refShare;
        if (winner != address(0)) {
            uint256 bounty = (stake * _params.bountyBps) / _BPS;
            rest -= bounty;
            if (!d.accuserIsWorker) bounty += _returnBond(d);
            if (bounty != 0) _market.credit(winner, bounty);
        }
        if (rest != 0) _market.creditEscrow(d.taskId >> 32, rest);
    }

    /// @dev A losing challenger's bond: referee share to the pot (returned), rest to the worker.
    function _forfeitBond(Dispute storage d) private returns (uint256 refShare) {
        uint256 bond = _returnBond(d);
        refShare = (bond * _params.refereeFeeBps) / _BPS;
        if (bond - refShare != 0) _market.credit(d.accused, bond - refShare);
    }

    /// @dev A party that did not lose: a worker's claim is released; a challenger's bond returns.
    function _upheld(Dispute storage d, address party, bool isWorker) private returns (uint256) {
        if (isWorker || d.accuserIsWorker) {
            _market.releaseClaim(d.taskId, party);
        } else {
            uint256 bond = _returnBond(d);
            if (bond != 0) _market.credit(party, bond);
        }
        return 0;
    }

    /// @dev Takes the bond out of the books once (bonds are paid out exactly once).
    function _returnBond(Dispute storage d) private returns (uint256 bond) {
        bond = d.bond;
        d.bond = 0;
        _totalBonds -= bond;
    }

    function _payMajority(uint256 disputeId, bytes32 verdict, uint256 pot, uint256 jobId) private {
        Seat[] storage seats = _seats[disputeId];
        uint256 winners;
        for (uint256 i = 0; i < seats.length; ++i) {
            if (seats[i].state == BallotState.Revealed && _ballots[disputeId][i] == verdict) ++winners;
        }
        uint256 share = pot / winners;
        for (uint256 i = 0; i < seats.length && share != 0; ++i) {
            if (seats[i].state == BallotState.Revealed && _ballots[disputeId][i] == verdict) {
                _market.credit(seats[i].referee, share);
            }
        }
        uint256 dust = pot - share * winners;
        if (dust != 0) _market.creditEscrow(jobId, dust);
    }

    function _seatOf(uint256 disputeId, address referee) private view returns (uint256, Seat storage) {
        Seat[] storage seats = _seats[disputeId];
        for (uint256 i = 0; i < seats.length; ++i) {
            if (seats[i].referee == referee) return (i, seats[i]);
        }
        revert DisputeResolverNotReferee(disputeId, referee);
    }

    function _allAtLeast(uint256 disputeId, BallotState state) private view returns (bool) {
        Seat[] storage seats = _seats[disputeId];
        for (uint256 i = 0; i < seats.length; ++i) {
            if (seats[i].state < state) return false;
        }
        return true;
    }

    function _inStatus(uint256 disputeId, DisputeStatus status) private view returns (Dispute storage d) {
        d = _disputes[disputeId];
        if (d.status != status) revert DisputeResolverWrongStatus(disputeId, d.status);
    }
}
