// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IForcedErrors, IJobMarket} from "./interfaces/IJobMarket.sol";
import {IVerifierRegistry} from "./interfaces/IVerifierRegistry.sol";

/// @title JobMarket
/// @notice Escrowed training jobs in replay mode, and the protocol's only vault.
///
/// A requester posts a job of `taskCount` tasks (one shard each), each to be trained by
/// `redundancy` distinct workers; the rewards of every slot plus a referee fee pool are pulled
/// into escrow at posting. A worker claims a slot with its secp256k1 public key and a stake; the
/// requester answers with the data key wrapped to that key (`deliverKey`); the worker commits
/// `keccak256(abi.encode(root, worker, salt))` and later reveals the Merkle root of its
/// checkpoint hashes (leaves `keccak256(abi.encode(uint256 i, bytes32 h_i))`, i = 0..n,
/// n + 1 = `checkpointCount`, OpenZeppelin sorted-pair tree) and its manifest CID. After the
/// challenge window, `finalize` makes reward and stake withdrawable (`withdraw`).
///
/// Task ids encode their job: `taskId = jobId << 32 | index` (see {taskIdOf}).
///
/// Copy protection: a task's reveals open only when all `redundancy` slots have committed, or
/// after `revealFrom` (the latest commit deadline of the task's claims), so no worker of the
/// task can see another's root before its own commit deadline. Limit: a slot that reopens
/// after reveals began (a worker timed out or was slashed) is claimed by someone who can see
/// the earlier roots.
///
/// Sampling verifiers of jobs whose JobSpec lets any registered verifier check the work
/// ("open") ask for the data key on-chain (`requestVerifierKey`, with the public key they
/// registered); the requester's key service answers with `deliverVerifierKey`. Whether a job
/// is open is the JobSpec's rule, applied off-chain by the requester: the contract only makes
/// requests and deliveries provable. No token moves.
///
/// Storage is laid out for gas (see {JobStore} and {Buckets}); the views return the documented
/// structs unchanged.
///
/// Money invariant: `token.balanceOf(this) >= liabilities()` = escrows + worker stakes +
/// module holdings (verifier stakes in the {VerifierRegistry}, challenge bonds in the
/// {DisputeResolver}) + amounts owed and not withdrawn, with equality unless someone sent
/// tokens to the market with a plain transfer; that surplus belongs to nobody in the protocol
/// and only the owner can move it out ({sweepSurplus}, never more than the surplus). The
/// owner can otherwise only pause new jobs; no function lets anyone move funds outside these
/// rules.
contract JobMarket is IJobMarket, Ownable, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    enum JobStatus {
        None,
        Open,
        Cancelled,
        Closed
    }

    enum ClaimStatus {
        None,
        Claimed,
        KeyDelivered,
        Committed,
        Revealed,
        Disputed,
        Finalized,
        Ended
    }

    enum VerifierKeyStatus {
        None,
        Requested,
        Delivered
    }

    /// @notice Everything `postJob` takes. Windows are in seconds.
    /// @param specCid IPFS CID of the JobSpec.
    /// @param shardsRoot Commitment to the shard CIDs and ciphertext hashes (defined by the JobSpec).
    /// @param checkpointCount Number of Merkle leaves n + 1 (n = stepsPerTask / k), at least 2.
    /// @param griefingFee Paid to a worker whose key never came (at most `rewardPerTask`).
    /// @param refereeFeePool Escrowed on top of the rewards; each settled dispute on the job pays
    /// its majority referees up to `refereeFeePool / (taskCount * redundancy)` from it.
    /// @param keyWindow Time the requester has to deliver the key after a claim.
    /// @param submissionWindow Time to commit, counted from the end of the key window.
    /// @param revealWindow Time to reveal once the task's reveals open.
    /// @param challengeWindow Time to challenge a revealed root.
    /// @param startsRoot Bound starts: the Merkle root (the checkpoint tree's leaf and pair
    /// hashes) over `(index, h_0)` for every task index, `h_0` the hash of the checkpoint the
    /// task must start from; a revealed root whose leaf 0 differs is slashed by a proof alone
    /// ({slashWrongStart}). Never zero.
    /// @param startsKeyed True when the starts can be computed only with the job's key (a
    /// round r > 0 starts from an encrypted initial model): a worker that finds its bound start
    /// wrong after the key may then {refuseStart}. False when the job document alone gives them
    /// (round 0): workers check them before claiming, and no refusal is admitted.
    struct JobParams {
        string specCid;
        bytes32 shardsRoot;
        uint32 taskCount;
        uint16 redundancy;
        uint32 checkpointCount;
        uint96 rewardPerTask;
        uint96 stakePerTask;
        uint96 griefingFee;
        uint128 refereeFeePool;
        uint32 keyWindow;
        uint32 submissionWindow;
        uint32 revealWindow;
        uint32 challengeWindow;
        bytes32 startsRoot;
        bool startsKeyed;
    }

    /// @notice A job as stored. `escrow` is what remains of the deposit; `settledSlots` counts
    /// slots paid out or closed; the escrow above `(taskCount * redundancy - settledSlots) *
    /// rewardPerTask` is free (fee pool, slashed stakes) and returns to the requester at close.
    struct Job {
        address requester;
        uint32 taskCount;
        uint16 redundancy;
        uint32 checkpointCount;
        uint96 rewardPerTask;
        uint96 stakePerTask;
        uint32 keyWindow;
        uint32 submissionWindow;
        uint96 griefingFee;
        uint96 refereeFee;
        uint32 revealWindow;
        uint32 challengeWindow;
        uint128 escrow;
        uint32 activeClaims;
        uint32 settledSlots;
        JobStatus status;
        bytes32 shardsRoot;
        bytes32 startsRoot;
        bool startsKeyed;
        string specCid;
    }

    /// @notice Per-task counters. `committed` counts live claims that have committed (incl.
    /// revealed, disputed, finalized); reveals open when it equals the redundancy or after
    /// `revealFrom`. `closed` counts slots whose reward paid a griefing fee. A slot is free
    /// while `active + finalized + closed < redundancy`.
    struct Task {
        uint64 revealFrom;
        uint16 active;
        uint16 committed;
        uint16 finalized;
        uint16 closed;
    }

    /// @notice One worker's claim on one task. Deadlines are unix seconds (0 = not yet set).
    /// A claim that ended without payment (abandoned, timed out, slashed) reads `Ended` with
    /// its deadlines kept, so it is told apart from a claim never made; its worker may claim
    /// the task again once no dispute of the old claim is open. `disputes` counts the open
    /// disputes of the claim (several may be open at once: see {openDispute}).
    /// `commitment` is the worker's commitment while the claim is Committed and zero otherwise:
    /// once the root is revealed it replaces the commitment in storage, so from Revealed on
    /// `commitment` reads zero and `root` the revealed root (zero before). The commitment stays
    /// provable from the {ResultCommitted} event.
    struct Claim {
        ClaimStatus status;
        uint64 keyDeadline;
        uint64 commitDeadline;
        uint64 challengeDeadline;
        bytes32 commitment;
        bytes32 root;
        uint16 disputes;
    }

    /// @dev Storage form of {Job} (same fields), grouped by the paths that read them so each
    /// transition touches as few slots as possible: `claim` and `reveal` read slot 0, `claim`
    /// and `finalize` update slot 1, money moves update slot 2, key deliveries read slot 3.
    struct JobStore {
        // slot 0: 8 + 32 + 16 + 4 * 32 + 32 + 8 = 224 bits
        JobStatus status;
        uint32 taskCount;
        uint16 redundancy;
        uint32 keyWindow;
        uint32 submissionWindow;
        uint32 revealWindow;
        uint32 challengeWindow;
        uint32 checkpointCount;
        bool startsKeyed;
        // forced errors on for this job (redundancy 1 on a network with a nonzero rate)
        bool forced;
        // slot 1: 96 + 96 + 32 = 224 bits
        uint96 rewardPerTask;
        uint96 stakePerTask;
        uint32 activeClaims;
        // slot 2: 128 + 96 + 32 = 256 bits
        uint128 escrow;
        uint96 refereeFee;
        uint32 settledSlots;
        // slot 3: 160 + 96 = 256 bits
        address requester;
        uint96 griefingFee;
        bytes32 shardsRoot;
        // the spec CID: up to 63 bytes inline in two words (the last byte of `cidTail` is the
        // length); longer ones in `specCidLong` (then that byte is 0xff)
        bytes32 cidHead;
        bytes32 cidTail;
        string specCidLong;
        bytes32 startsRoot;
    }

    /// @dev Storage form of {Claim}: deadlines in 40 bits (unix seconds to the year 36812),
    /// plus the job parameters `reveal` and `openDispute` need, copied at claim time into the
    /// same slot (8 + 3 * 40 + 32 + 32 + 16 + 32 + 16 = 256 bits) so they do not read the job;
    /// `disputes` counts the claim's open disputes.
    /// `hash` is the commitment until the reveal and the root from then on (one slot: the
    /// reveal overwrites a nonzero word instead of filling a fresh one).
    struct ClaimStore {
        ClaimStatus status;
        uint40 keyDeadline;
        uint40 commitDeadline;
        uint40 challengeDeadline;
        uint32 revealWindow;
        uint32 challengeWindow;
        uint16 redundancy;
        uint32 checkpointCount;
        uint16 disputes;
        bytes32 hash;
    }

    /// @dev Two money buckets in one slot. `live` is set to 1 at construction and never
    /// cleared, so a bucket moving away from zero never pays for a zero-to-nonzero store.
    /// uint120 holds 1.3e36 base units, more than any real token supply; SafeCast reverts
    /// rather than wrap if one ever did not fit.
    struct Buckets {
        uint120 a;
        uint120 b;
        uint16 live;
    }

    /// @dev Top bit of an `_owed` entry: set for verifiers when they register and kept through
    /// withdrawals, so paying a repeat payee (referee fees, bounties, returned bonds) never
    /// pays for a zero-to-nonzero store; the registration pays for the slot once instead.
    uint256 private constant _LIVE = 1 << 255;

    /// @notice Share of a worker's stake forfeited when it misses its commit or reveal deadline;
    /// it goes to the job's escrow (the requester), the rest back to the worker.
    uint256 public constant MISSED_DEADLINE_PENALTY_BPS = 5_000;
    /// @notice Share of a wrong-start worker's stake paid to whoever proved it
    /// ({slashWrongStart}); the rest goes to the market's owner (the protocol), never to the
    /// job's escrow: the requester bound the start, so it must not profit from the slash.
    uint256 public constant WRONG_START_BOUNTY_BPS = 5_000;
    uint256 private constant _BPS = 10_000;

    IERC20 private immutable _token;
    address private _registry;
    // one slot: `postJob` reads the resolver (wired?) and bumps the job counter together
    address private _resolver;
    uint64 private _jobCount;
    /// @dev The resolver's `forcedErrorBps` and `jackpotFeeBps`, read once when the modules are wired.
    uint16 private _forcedErrorBps;
    uint16 private _jackpotFeeBps;

    mapping(uint256 jobId => JobStore) private _jobs;
    mapping(uint256 taskId => Task) private _tasks;
    mapping(uint256 taskId => mapping(address worker => ClaimStore)) private _claims;
    mapping(address account => uint256) private _owed;
    /// @dev Forced errors (docs/spec/forced.md), forced jobs only (zero elsewhere): from the
    /// claim, the top 192 bits of the worker's `seedHash` with the claim's block number in the
    /// low 64; from the key delivery on, the seal `keccak256(abi.encode(uint256(seedHash) >> 64,
    /// snap))`, `snap = blockhash(claimBlock)`, with its lowest bit cleared; that bit is set
    /// once the seed is opened ({openSeal}).
    mapping(uint256 taskId => mapping(address worker => bytes32)) private _seals;
    mapping(uint256 jobId => mapping(address verifier => VerifierKeyStatus)) private _verifierKeys;

    /// @dev a = escrows of every job, b = worker stakes.
    Buckets private _escrowStakes;
    /// @dev a = owed and not withdrawn, b = held for the resolver (bonds; fees mid-settlement).
    Buckets private _owedResolver;
    /// @dev Held for the registry (verifier stakes).
    uint256 private _registryHeld;

    event ModulesSet(address registry, address resolver);
    event JobPosted(
        uint256 indexed jobId,
        address indexed requester,
        string specCid,
        bytes32 shardsRoot,
        uint32 taskCount,
        uint16 redundancy,
        uint32 checkpointCount,
        uint256 escrow
    );
    event JobCancelled(uint256 indexed jobId, uint256 refunded);
    event JobClosed(uint256 indexed jobId, uint256 refunded);
    event TaskClaimed(
        uint256 indexed taskId,
        uint256 indexed jobId,
        address indexed worker,
        bytes pubKey,
        uint64 keyDeadline,
        uint64 commitDeadline
    );
    event KeyDelivered(uint256 indexed taskId, address indexed worker, bytes envelope);
    event ClaimAbandoned(uint256 indexed taskId, address indexed worker, uint256 griefingFee);
    /// @notice A worker refused a keyed bound start it found wrong: stake back plus `griefingFee`,
    /// the slot closed.
    event StartRefused(uint256 indexed taskId, address indexed worker, uint256 griefingFee);
    event ResultCommitted(uint256 indexed taskId, address indexed worker, bytes32 commitment);
    event ResultRevealed(
        uint256 indexed taskId, address indexed worker, bytes32 root, string manifestCid, uint64 challengeDeadline
    );
    event ClaimTimedOut(uint256 indexed taskId, address indexed worker, uint256 penalty);
    event ClaimFinalized(uint256 indexed taskId, address indexed worker, uint256 reward);
    event ClaimDisputed(uint256 indexed taskId, address indexed worker);
    event ClaimReleased(uint256 indexed taskId, address indexed worker);
    event ClaimSlashed(uint256 indexed taskId, address indexed worker, uint256 stake);
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice A revealed root's leaf 0 (`started`) differs from the start the job bound for
    /// the task (`bound`): the worker's stake was slashed, `bounty` of it to `prover`.
    event WrongStartProven(
        uint256 indexed taskId, address indexed worker, address indexed prover, bytes32 started, bytes32 bound, uint256 bounty
    );
    /// @notice A module's payout to `account` (settlement shares, returned bonds, bounties,
    /// referee fees, withdrawn verifier stakes). With the market's own events
    /// ({ClaimFinalized}, {ClaimTimedOut}, {ClaimAbandoned}, {JobCancelled}, {JobClosed},
    /// {Withdrawn}) it rebuilds what every account is owed from logs alone.
    event Credited(address indexed account, uint256 amount);
    /// @notice Tokens sent to the market outside the protocol (a plain transfer) were moved out.
    event SurplusSwept(address indexed to, uint256 amount);
    event VerifierKeyRequested(uint256 indexed jobId, address indexed verifier, bytes pubKey);
    event VerifierKeyDelivered(uint256 indexed jobId, address indexed verifier, bytes envelope);

    error JobMarketNotModule(address caller);
    error JobMarketModulesAlreadySet();
    error JobMarketModulesNotSet();
    error JobMarketInvalidParameter(string name);
    error JobMarketUnknownJob(uint256 jobId);
    error JobMarketJobNotOpen(uint256 jobId, JobStatus status);
    error JobMarketJobBusy(uint256 jobId, uint32 activeClaims, uint32 unsettledSlots);
    error JobMarketNotRequester(uint256 jobId, address caller);
    error JobMarketTaskOutOfRange(uint256 taskId);
    error JobMarketTaskFull(uint256 taskId);
    error JobMarketBadPubKey(address caller, address derived);
    error JobMarketWrongStatus(uint256 taskId, address worker, ClaimStatus actual);
    error JobMarketDeadlinePassed(uint256 taskId, address worker, uint64 deadline);
    error JobMarketTooEarly(uint256 taskId, address worker, uint64 opensAfter);
    error JobMarketCommitMismatch(uint256 taskId, address worker);
    error JobMarketNothingOwed(address account);
    error JobMarketInsufficientHeld(address module, uint256 held, uint256 amount);
    error JobMarketNotVerifier(address caller);
    error JobMarketRequesterCannotVerify(uint256 jobId, address requester);
    error JobMarketVerifierKeyWrongStatus(uint256 jobId, address verifier, VerifierKeyStatus actual);
    error JobMarketTooManyDisputes(uint256 taskId, address worker);
    error JobMarketBadStartProof(uint256 taskId, address worker, bool boundSide);
    error JobMarketRightStart(uint256 taskId, address worker, bytes32 h0);
    error JobMarketStartsPublic(uint256 jobId);
    error JobMarketSeedNotOpened(uint256 taskId, address worker);

    modifier onlyModule() {
        if (msg.sender != _resolver && msg.sender != _registry) revert JobMarketNotModule(msg.sender);
        _;
    }

    modifier onlyResolver() {
        if (msg.sender != _resolver) revert JobMarketNotModule(msg.sender);
        _;
    }

    /// @param token_ The ERC-20 used for every reward, stake, bond and fee.
    /// @param owner_ May pause new jobs and (once) wire the modules; cannot move funds.
    constructor(IERC20 token_, address owner_) Ownable(owner_) {
        _token = token_;
        _escrowStakes.live = 1;
        _owedResolver.live = 1;
    }

    // ------------------------------------------------------------------ owner

    /// @notice Wire the registry and the resolver, once, at deployment. Jobs cannot be posted
    /// before. Emits a {ModulesSet} event.
    function setModules(address registry_, address resolver_) external onlyOwner {
        if (_registry != address(0)) revert JobMarketModulesAlreadySet();
        if (registry_ == address(0) || resolver_ == address(0) || registry_ == resolver_) {
            revert JobMarketInvalidParameter("modules");
        }
        _registry = registry_;
        _resolver = resolver_;
        (_forcedErrorBps, _jackpotFeeBps) = IForcedErrors(resolver_).forcedErrorParams();
        emit ModulesSet(registry_, resolver_);
    }

    /// @notice Stop new jobs (everything else keeps working). Emits a {Paused} event.
    function pause() external onlyOwner {
        _pause();
    }

    /// @notice Allow new jobs again. Emits an {Unpaused} event.
    function unpause() external onlyOwner {
        _unpause();
    }

    /// @notice Move tokens sent to the market outside the protocol (a plain `transfer`, which
    /// no bucket records) to `to`: exactly `token.balanceOf(this) - liabilities()`, so nothing
    /// anyone is owed can leave. The owner decides whom they go to (the sender, if known).
    /// Emits a {SurplusSwept} event.
    function sweepSurplus(address to) external onlyOwner nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert JobMarketInvalidParameter("to");
        uint256 balance = _token.balanceOf(address(this));
        uint256 owedTotal = _liabilities();
        amount = balance > owedTotal ? balance - owedTotal : 0;
        if (amount == 0) revert JobMarketNothingOwed(to);
        emit SurplusSwept(to, amount);
        _token.safeTransfer(to, amount);
    }

    // ------------------------------------------------------------------ requester

    /// @notice Post a job and pull `taskCount * redundancy * rewardPerTask + refereeFeePool`
    /// from the caller (approve the market first). Returns the new job id (from 1).
    /// Emits a {JobPosted} event.
    function postJob(JobParams calldata p) external whenNotPaused nonReentrant returns (uint256 jobId) {
        if (_resolver == address(0)) revert JobMarketModulesNotSet();
        _checkParams(p);
        uint256 slots = uint256(p.taskCount) * p.redundancy;
        // slots are counted in 32 bits (activeClaims, settledSlots): more would wrap them
        if (slots > type(uint32).max) revert JobMarketInvalidParameter("slots");
        // the per-dispute referee fee is stored in 96 bits
        if (p.refereeFeePool / slots > type(uint96).max) revert JobMarketInvalidParameter("refereeFeePool");
        uint256 escrow = slots * p.rewardPerTask + p.refereeFeePool;
        if (escrow > type(uint128).max) revert JobMarketInvalidParameter("escrow");
        // forced errors exist in redundancy-1 jobs only: they alone pay into the jackpot pool
        bool forced = p.redundancy == 1 && _forcedErrorBps != 0;
        uint256 fee = forced ? (slots * p.rewardPerTask * _jackpotFeeBps) / _BPS : 0;
        // cannot overflow: one job per transaction, 2**64 transactions will never happen
        unchecked {
            jobId = ++_jobCount;
        }
        // job ids fit 32 bits, so task ids fit 64 (the resolver stores them so)
        if (jobId > type(uint32).max) revert JobMarketInvalidParameter("jobCount");
        JobStore storage job = _jobs[jobId];
        (job.status, job.taskCount, job.redundancy, job.keyWindow, job.submissionWindow) =
            (JobStatus.Open, p.taskCount, p.redundancy, p.keyWindow, p.submissionWindow);
        (job.revealWindow, job.challengeWindow, job.checkpointCount) =
            (p.revealWindow, p.challengeWindow, p.checkpointCount);
        (job.rewardPerTask, job.stakePerTask) = (p.rewardPerTask, p.stakePerTask);
        (job.escrow, job.refereeFee) = (uint128(escrow), uint96(p.refereeFeePool / slots));
        (job.requester, job.griefingFee) = (msg.sender, p.griefingFee);
        (job.shardsRoot, job.startsRoot, job.startsKeyed, job.forced) =
            (p.shardsRoot, p.startsRoot, p.startsKeyed, forced);
        _storeCid(job, p.specCid);
        _escrowStakes.a += SafeCast.toUint120(escrow);
        if (fee != 0) _addHeld(_resolver, fee);
        emit JobPosted(
            jobId, msg.sender, p.specCid, p.shardsRoot, p.taskCount, p.redundancy, p.checkpointCount, escrow
        );
        _token.safeTransferFrom(msg.sender, address(this), escrow + fee);
    }

    /// @notice Stop new claims on the job; the rewards of unclaimed slots and the free escrow
    /// become withdrawable by the requester. Running claims continue; `closeJob` sweeps the
    /// rest when they end. Emits a {JobCancelled} event.
    function cancelJob(uint256 jobId) external {
        JobStore storage job = _openJob(jobId);
        if (msg.sender != job.requester) revert JobMarketNotRequester(jobId, msg.sender);
        job.status = JobStatus.Cancelled;
        job.settledSlots = uint32(uint256(job.taskCount) * job.redundancy) - job.activeClaims;
        uint256 refund = _free(job);
        _payFromEscrow(job, job.requester, refund);
        emit JobCancelled(jobId, refund);
    }

    /// @notice Anyone may close a job whose slots are all paid out or closed and that has no
    /// running claim; the remaining escrow (unused fee pool, slashed stakes) goes to the
    /// requester. Emits a {JobClosed} event.
    function closeJob(uint256 jobId) external {
        JobStore storage job = _jobs[jobId];
        if (job.status != JobStatus.Open && job.status != JobStatus.Cancelled) {
            revert JobMarketJobNotOpen(jobId, job.status);
        }
        uint32 unsettled = uint32(uint256(job.taskCount) * job.redundancy) - job.settledSlots;
        if (job.activeClaims != 0 || unsettled != 0) revert JobMarketJobBusy(jobId, job.activeClaims, unsettled);
        job.status = JobStatus.Closed;
        uint256 refund = job.escrow;
        _payFromEscrow(job, job.requester, refund);
        emit JobClosed(jobId, refund);
    }

    /// @notice The requester delivers the data key wrapped (ECIES) to `worker`'s public key,
    /// before the claim's key deadline. Emits a {KeyDelivered} event.
    function deliverKey(uint256 taskId, address worker, bytes calldata envelope) external {
        if (msg.sender != _jobs[taskId >> 32].requester) revert JobMarketNotRequester(taskId >> 32, msg.sender);
        ClaimStore storage c = _claimIn(taskId, worker, ClaimStatus.Claimed);
        if (block.timestamp > c.keyDeadline) revert JobMarketDeadlinePassed(taskId, worker, c.keyDeadline);
        c.status = ClaimStatus.KeyDelivered;
        uint256 w = uint256(_seals[taskId][worker]);
        // the snapshot: the claim block's hash, zero after 256 blocks (then never selected); the
        // seal's lowest bit is cleared here and set once the seed is opened ({openSeal})
        if (w != 0) {
            _seals[taskId][worker] = bytes32(uint256(keccak256(abi.encode(w >> 64, blockhash(uint64(w))))) & ~uint256(1));
        }
        emit KeyDelivered(taskId, worker, envelope);
    }

    /// @notice The requester delivers the data key of job `jobId` wrapped (ECIES) to the public
    /// key `verifier` registered, answering its `requestVerifierKey`. Deliver only to verifiers
    /// the JobSpec's verification policy admits (an "open" job admits every registered one).
    /// Emits a {VerifierKeyDelivered} event.
    function deliverVerifierKey(uint256 jobId, address verifier, bytes calldata envelope) external {
        if (msg.sender != _jobs[jobId].requester) revert JobMarketNotRequester(jobId, msg.sender);
        VerifierKeyStatus status = _verifierKeys[jobId][verifier];
        if (status != VerifierKeyStatus.Requested) revert JobMarketVerifierKeyWrongStatus(jobId, verifier, status);
        _verifierKeys[jobId][verifier] = VerifierKeyStatus.Delivered;
        emit VerifierKeyDelivered(jobId, verifier, envelope);
    }

    // ------------------------------------------------------------------ verifier

    /// @notice An active registered verifier (not the job's requester) asks for the data key of
    /// open job `jobId` to check its results by sampling; the event carries the public key it
    /// registered, for the requester's key service to wrap the key to. Once per job and
    /// verifier. Emits a {VerifierKeyRequested} event.
    function requestVerifierKey(uint256 jobId) external {
        JobStore storage job = _openJob(jobId);
        if (msg.sender == job.requester) revert JobMarketRequesterCannotVerify(jobId, msg.sender);
        IVerifierRegistry registry = IVerifierRegistry(_registry);
        if (!registry.isActive(msg.sender)) revert JobMarketNotVerifier(msg.sender);
        VerifierKeyStatus status = _verifierKeys[jobId][msg.sender];
        if (status != VerifierKeyStatus.None) revert JobMarketVerifierKeyWrongStatus(jobId, msg.sender, status);
        _verifierKeys[jobId][msg.sender] = VerifierKeyStatus.Requested;
        emit VerifierKeyRequested(jobId, msg.sender, registry.pubKeyOf(msg.sender));
    }

    // ------------------------------------------------------------------ worker

    /// @notice Claim a slot of task `taskId`, locking the job's `stakePerTask` (approve first).
    /// `pubKey` is the caller's 64-byte uncompressed secp256k1 key (without the 0x04 prefix);
    /// its keccak must give the caller's address. `seedHash` is `keccak256(secret)` for forced
    /// errors (docs/spec/forced.md): kept for a forced job (redundancy 1, forced errors on),
    /// whose claims are paid only once the seed is opened; ignored otherwise.
    /// Emits a {TaskClaimed} event.
    function claim(uint256 taskId, bytes calldata pubKey, bytes32 seedHash) external nonReentrant {
        uint256 jobId = taskId >> 32;
        JobStore storage job = _openJob(jobId);
        if (uint32(taskId) >= job.taskCount) revert JobMarketTaskOutOfRange(taskId);
        address derived = pubKey.length == 64 ? address(uint160(uint256(keccak256(pubKey)))) : address(0);
        if (derived != msg.sender) revert JobMarketBadPubKey(msg.sender, derived);
        Task memory task = _loadTask(taskId);
        if (task.active + task.finalized + task.closed >= job.redundancy) revert JobMarketTaskFull(taskId);
        ClaimStore storage c = _claims[taskId][msg.sender];
        ClaimStatus was = c.status;
        // a claim of this worker that ended may be replaced once none of its disputes is open
        if (was != ClaimStatus.None && (was != ClaimStatus.Ended || c.disputes != 0)) {
            revert JobMarketWrongStatus(taskId, msg.sender, was);
        }
        uint64 keyDeadline = uint64(block.timestamp) + job.keyWindow;
        uint64 commitDeadline = keyDeadline + job.submissionWindow;
        (c.status, c.keyDeadline, c.commitDeadline) = (ClaimStatus.Claimed, uint40(keyDeadline), uint40(commitDeadline));
        if (was == ClaimStatus.Ended) c.challengeDeadline = 0;
        (c.revealWindow, c.challengeWindow, c.redundancy, c.checkpointCount) =
            (job.revealWindow, job.challengeWindow, job.redundancy, job.checkpointCount);
        // every claim of a forced job is sealed, with the seed it gives (a zero or made-up one
        // can never be opened, so its claim is timed out, not paid), and a new claim's seal
        // replaces an ended claim's
        if (job.forced) _seals[taskId][msg.sender] = bytes32((uint256(seedHash) >> 64 << 64) | block.number);
        // cannot overflow: active + finalized + closed < redundancy <= type(uint16).max (checked above)
        unchecked {
            task.active += 1;
        }
        if (commitDeadline > task.revealFrom) task.revealFrom = commitDeadline;
        _storeTask(taskId, task);
        job.activeClaims += 1;
        uint96 stake = job.stakePerTask;
        _escrowStakes.b += stake;
        emit TaskClaimed(taskId, jobId, msg.sender, pubKey, keyDeadline, commitDeadline);
        _token.safeTransferFrom(msg.sender, address(this), stake);
    }

    /// @notice After a missed key deadline anyone may end the claim: the worker gets its stake
    /// back plus the job's griefing fee out of the free escrow (if that is short, the slot
    /// closes and its reward pays the fee); otherwise the slot reopens.
    /// Emits a {ClaimAbandoned} event.
    function abandon(uint256 taskId, address worker) external {
        ClaimStore storage c = _claimIn(taskId, worker, ClaimStatus.Claimed);
        if (block.timestamp <= c.keyDeadline) revert JobMarketTooEarly(taskId, worker, c.keyDeadline);
        JobStore storage job = _jobs[taskId >> 32];
        _endClaim(job, taskId, worker, false);
        // the requester's free escrow cannot pay: this slot closes and its reward pays
        uint256 fee = _releaseWithFee(job, taskId, worker, _free(job) < job.griefingFee);
        emit ClaimAbandoned(taskId, worker, fee);
    }

    /// @notice A worker whose key arrived and whose task's bound start is not the start that
    /// key opens refuses the task before committing: its stake back plus the job's griefing fee
    /// (its costs), and the slot closes, since no honest worker could fill it. Only for a job
    /// posted with `startsKeyed` (its starts need the key to compute); a job's public starts
    /// are checked before claiming. Emits a {StartRefused} event.
    function refuseStart(uint256 taskId) external {
        ClaimStore storage c = _claimIn(taskId, msg.sender, ClaimStatus.KeyDelivered);
        JobStore storage job = _jobs[taskId >> 32];
        if (!job.startsKeyed) revert JobMarketStartsPublic(taskId >> 32);
        if (block.timestamp > c.commitDeadline) revert JobMarketDeadlinePassed(taskId, msg.sender, c.commitDeadline);
        _endClaim(job, taskId, msg.sender, false);
        uint256 fee = _releaseWithFee(job, taskId, msg.sender, true);
        emit StartRefused(taskId, msg.sender, fee);
    }

    /// @dev Pay an ended, uncommitted claim its stake back plus the griefing fee out of the
    /// free escrow (at most what is free); `close` first closes its slot, freeing its reward
    /// (at least the fee). Returns the fee paid.
    function _releaseWithFee(JobStore storage job, uint256 taskId, address worker, bool close)
        private
        returns (uint256 fee)
    {
        if (close && job.status == JobStatus.Open) {
            job.settledSlots += 1;
            _tasks[taskId].closed += 1;
        }
        fee = job.griefingFee;
        uint256 free = _free(job);
        if (fee > free) fee = free;
        uint256 stake = job.stakePerTask;
        _escrowStakes.b -= uint120(stake);
        if (fee != 0) {
            job.escrow -= uint128(fee);
            _escrowStakes.a -= uint120(fee);
        }
        _credit(worker, stake + fee);
    }

    /// @notice Commit to a checkpoint root: `commitment = keccak256(abi.encode(root, msg.sender,
    /// salt))` (never zero), after the key arrived and before the commit deadline.
    /// Emits a {ResultCommitted} event.
    function commit(uint256 taskId, bytes32 commitment) external {
        if (commitment == bytes32(0)) revert JobMarketInvalidParameter("commitment");
        ClaimStore storage c = _claimIn(taskId, msg.sender, ClaimStatus.KeyDelivered);
        if (block.timestamp > c.commitDeadline) revert JobMarketDeadlinePassed(taskId, msg.sender, c.commitDeadline);
        // the stored status stays KeyDelivered: a nonzero commitment makes it Committed
        // (see {_statusOf}), which saves rewriting the claim's first slot
        c.hash = commitment;
        // cannot overflow: committed <= active <= redundancy, a uint16
        unchecked {
            _tasks[taskId].committed += 1;
        }
        emit ResultCommitted(taskId, msg.sender, commitment);
    }

    /// @notice Reveal the committed root and the manifest CID. Reveals open when every slot of
    /// the task has committed, or after the task's `revealFrom`; they close `revealWindow`
    /// later. Starts the challenge window. Emits a {ResultRevealed} event.
    function reveal(uint256 taskId, bytes32 root, bytes32 salt, string calldata manifestCid) external {
        ClaimStore storage c = _claimIn(taskId, msg.sender, ClaimStatus.Committed);
        uint64 revealFrom;
        if (c.redundancy == 1) {
            // a single-slot task: this claim is its only committed one (reveals are open), and
            // its commit deadline is the task's revealFrom (claims of a slot follow each other,
            // so the live one has the latest deadline); no need to read the task
            revealFrom = c.commitDeadline;
        } else {
            Task storage task = _tasks[taskId];
            revealFrom = task.revealFrom;
            if (task.committed < c.redundancy && block.timestamp <= revealFrom) {
                revert JobMarketTooEarly(taskId, msg.sender, revealFrom);
            }
        }
        uint64 revealDeadline = revealFrom + c.revealWindow;
        if (block.timestamp > revealDeadline) revert JobMarketDeadlinePassed(taskId, msg.sender, revealDeadline);
        if (keccak256(abi.encode(root, msg.sender, salt)) != c.hash) {
            revert JobMarketCommitMismatch(taskId, msg.sender);
        }
        uint64 challengeDeadline = uint64(block.timestamp) + c.challengeWindow;
        (c.status, c.challengeDeadline) = (ClaimStatus.Revealed, uint40(challengeDeadline));
        // the root replaces the commitment (the ResultCommitted event keeps the commitment)
        c.hash = root;
        emit ResultRevealed(taskId, msg.sender, root, manifestCid, challengeDeadline);
    }

    /// @notice Anyone may time out a worker that missed its commit deadline (key delivered, no
    /// commit) or its reveal deadline (committed, no reveal): it forfeits
    /// MISSED_DEADLINE_PENALTY_BPS of its stake to the job's escrow, gets the rest back, and
    /// the slot reopens. Emits a {ClaimTimedOut} event.
    function timeout(uint256 taskId, address worker) external {
        ClaimStore storage c = _claims[taskId][worker];
        JobStore storage job = _jobs[taskId >> 32];
        ClaimStatus status = _statusOf(c);
        uint64 deadline;
        if (status == ClaimStatus.KeyDelivered) {
            deadline = c.commitDeadline;
        } else if (status == ClaimStatus.Committed) {
            deadline = _tasks[taskId].revealFrom + c.revealWindow;
        } else if (status == ClaimStatus.Revealed && _unopened(taskId, worker)) {
            deadline = c.challengeDeadline + c.revealWindow; // a forced job's seed never opened
        } else {
            revert JobMarketWrongStatus(taskId, worker, status);
        }
        if (block.timestamp <= deadline) revert JobMarketTooEarly(taskId, worker, deadline);
        _endClaim(job, taskId, worker, status != ClaimStatus.KeyDelivered);
        uint256 stake = job.stakePerTask;
        uint256 penalty = (stake * MISSED_DEADLINE_PENALTY_BPS) / _BPS;
        job.escrow += uint128(penalty);
        Buckets memory es = _escrowStakes;
        (es.a, es.b) = (es.a + uint120(penalty), es.b - uint120(stake));
        _escrowStakes = es;
        _credit(worker, stake - penalty);
        emit ClaimTimedOut(taskId, worker, penalty);
    }

    /// @notice Anyone may prove that a revealed (or disputed) claim did not start where the
    /// job bound its task to start: `started` is leaf 0 of the worker's root (`startedProof`),
    /// `bound` the task's leaf under the job's `startsRoot` (`boundProof`), and they differ.
    /// No committee: the claim ends at once, WRONG_START_BOUNTY_BPS of its stake to the caller
    /// and the rest to the market's owner (never to the requester, who bound the start: a
    /// requester cannot prove, and a requester's bogus start gains it nothing); the slot
    /// reopens. Open disputes of the claim count off as for any slashed claim.
    /// Emits {ClaimSlashed} and {WrongStartProven} events.
    function slashWrongStart(
        uint256 taskId,
        address worker,
        bytes32 started,
        bytes32[] calldata startedProof,
        bytes32 bound,
        bytes32[] calldata boundProof
    ) external {
        ClaimStore storage c = _claims[taskId][worker];
        ClaimStatus status = c.status;
        if (status != ClaimStatus.Revealed && status != ClaimStatus.Disputed) {
            revert JobMarketWrongStatus(taskId, worker, _statusOf(c));
        }
        if (!MerkleProof.verifyCalldata(startedProof, c.hash, keccak256(abi.encode(uint256(0), started)))) {
            revert JobMarketBadStartProof(taskId, worker, false);
        }
        JobStore storage job = _jobs[taskId >> 32];
        if (msg.sender == job.requester) revert JobMarketRequesterCannotVerify(taskId >> 32, msg.sender);
        bytes32 leaf = keccak256(abi.encode(uint256(uint32(taskId)), bound));
        if (!MerkleProof.verifyCalldata(boundProof, job.startsRoot, leaf)) {
            revert JobMarketBadStartProof(taskId, worker, true);
        }
        if (started == bound) revert JobMarketRightStart(taskId, worker, started);
        uint256 bounty = _slashStart(job, taskId, worker);
        emit WrongStartProven(taskId, worker, msg.sender, started, bound, bounty);
    }

    /// @dev End a wrong-start claim: the bounty share of its stake to the caller, the rest to
    /// the owner. Returns the bounty.
    function _slashStart(JobStore storage job, uint256 taskId, address worker) private returns (uint256 bounty) {
        _endClaim(job, taskId, worker, true);
        uint256 stake = job.stakePerTask;
        bounty = (stake * WRONG_START_BOUNTY_BPS) / _BPS;
        _escrowStakes.b -= uint120(stake);
        _credit(msg.sender, bounty);
        _credit(owner(), stake - bounty);
        emit ClaimSlashed(taskId, worker, stake);
    }

    /// @notice Anyone may finalize a revealed claim after its challenge window (a forced job's
    /// once its seed is opened): the reward and the stake become withdrawable by the worker.
    /// Emits a {ClaimFinalized} event.
    function finalize(uint256 taskId, address worker) external {
        ClaimStore storage c = _claimIn(taskId, worker, ClaimStatus.Revealed);
        if (block.timestamp <= c.challengeDeadline) revert JobMarketTooEarly(taskId, worker, c.challengeDeadline);
        if (_unopened(taskId, worker)) revert JobMarketSeedNotOpened(taskId, worker);
        c.status = ClaimStatus.Finalized;
        Task memory task = _loadTask(taskId);
        // cannot overflow: this claim was active, and active + finalized <= redundancy (uint16)
        unchecked {
            (task.active, task.finalized) = (task.active - 1, task.finalized + 1);
        }
        _storeTask(taskId, task);
        JobStore storage job = _jobs[taskId >> 32];
        uint96 reward = job.rewardPerTask;
        uint96 stake = job.stakePerTask;
        job.activeClaims -= 1;
        job.escrow -= reward;
        job.settledSlots += 1;
        Buckets memory es = _escrowStakes;
        // cannot underflow: the job's escrow held the reward and the stakes bucket this stake
        unchecked {
            (es.a, es.b) = (es.a - reward, es.b - stake);
        }
        _escrowStakes = es;
        _credit(worker, uint256(reward) + stake);
        emit ClaimFinalized(taskId, worker, reward);
    }

    /// @notice Transfer everything the caller is owed to the caller. Emits a {Withdrawn} event.
    function withdraw() external nonReentrant {
        uint256 stored = _owed[msg.sender];
        uint256 amount = stored & ~_LIVE;
        if (amount == 0) revert JobMarketNothingOwed(msg.sender);
        _owed[msg.sender] = stored & _LIVE;
        // cannot underflow: the owed bucket is the sum of every account's owed amount
        unchecked {
            _owedResolver.a -= uint120(amount);
        }
        emit Withdrawn(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ modules

    /// @inheritdoc IJobMarket
    function collect(address from, uint256 amount) external onlyModule nonReentrant {
        // the caller is a module: not the resolver means the registry (a verifier registering)
        if (msg.sender != _resolver && _owed[from] == 0) _owed[from] = _LIVE;
        _addHeld(msg.sender, amount);
        _token.safeTransferFrom(from, address(this), amount);
    }

    /// @inheritdoc IJobMarket
    /// @dev Emits a {Credited} event.
    function credit(address to, uint256 amount) external onlyModule {
        _takeHeld(amount);
        _credit(to, amount);
        emit Credited(to, amount);
    }

    /// @inheritdoc IJobMarket
    /// @dev Emits a {Credited} event per nonzero amount.
    function creditMany(address[] calldata to, uint256[] calldata amounts, uint256 jobId, uint256 toEscrow)
        external
        onlyResolver
    {
        uint256 total = toEscrow;
        for (uint256 i = 0; i < to.length; ++i) {
            total += amounts[i];
            if (amounts[i] != 0) {
                _owed[to[i]] += amounts[i];
                emit Credited(to[i], amounts[i]);
            }
        }
        _takeHeld(total);
        Buckets memory o = _owedResolver;
        o.a += SafeCast.toUint120(total - toEscrow);
        _owedResolver = o;
        if (toEscrow != 0) _toEscrow(jobId, toEscrow);
    }

    /// @inheritdoc IJobMarket
    function moveHeld(address toModule, uint256 amount) external onlyModule {
        if (toModule != _resolver && toModule != _registry) revert JobMarketNotModule(toModule);
        _takeHeld(amount);
        _addHeld(toModule, amount);
    }

    /// @inheritdoc IJobMarket
    function creditEscrow(uint256 jobId, uint256 amount) external onlyModule {
        _takeHeld(amount);
        _toEscrow(jobId, amount);
    }

    /// @inheritdoc IJobMarket
    /// @dev Emits a {ClaimDisputed} event.
    /// @dev A claim already Disputed takes further disputes (no deadline applies while one is
    /// open: see {releaseClaim}), so one dispute cannot shut out another challenger.
    /// Emits a {ClaimDisputed} event.
    function openDispute(uint256 taskId, address worker) external onlyResolver returns (DisputedClaim memory d) {
        ClaimStore storage c = _claims[taskId][worker];
        ClaimStatus status = c.status;
        if (status == ClaimStatus.Revealed) {
            if (block.timestamp > c.challengeDeadline) {
                revert JobMarketDeadlinePassed(taskId, worker, c.challengeDeadline);
            }
            c.status = ClaimStatus.Disputed;
        } else if (status != ClaimStatus.Disputed) {
            revert JobMarketWrongStatus(taskId, worker, _statusOf(c));
        }
        uint16 open = c.disputes;
        if (open == type(uint16).max) revert JobMarketTooManyDisputes(taskId, worker);
        c.disputes = open + 1;
        d = DisputedClaim(c.hash, c.checkpointCount);
        emit ClaimDisputed(taskId, worker);
    }

    /// @inheritdoc IJobMarket
    function sealOf(uint256 taskId, address worker) external view returns (bytes32) {
        return _seals[taskId][worker];
    }

    /// @inheritdoc IJobMarket
    function openSeal(uint256 taskId, address worker, bool selected) external onlyResolver {
        ClaimStore storage c = _claimIn(taskId, worker, ClaimStatus.Revealed);
        if (block.timestamp <= c.challengeDeadline) revert JobMarketTooEarly(taskId, worker, c.challengeDeadline);
        _seals[taskId][worker] |= bytes32(uint256(1));
        if (selected) c.challengeDeadline = uint40(block.timestamp) + c.challengeWindow;
    }

    /// @inheritdoc IJobMarket
    function disputedClaim(uint256 taskId, address worker) external view returns (DisputedClaim memory) {
        ClaimStore storage c = _claimIn(taskId, worker, ClaimStatus.Disputed);
        return DisputedClaim(c.hash, c.checkpointCount);
    }

    /// @inheritdoc IJobMarket
    /// @dev When the claim's last open dispute ends it returns to Revealed with a challenge
    /// deadline at least a full `challengeWindow` away: a result stays open to challenge for
    /// a whole window in which no dispute of it is open. A claim slashed meanwhile by another
    /// dispute (Ended) only counts the dispute off. Emits a {ClaimReleased} event.
    function releaseClaim(uint256 taskId, address worker) external onlyResolver {
        ClaimStore storage c = _claims[taskId][worker];
        ClaimStatus status = c.status;
        if (status != ClaimStatus.Disputed && status != ClaimStatus.Ended) {
            revert JobMarketWrongStatus(taskId, worker, _statusOf(c));
        }
        uint16 left = c.disputes - 1;
        c.disputes = left;
        if (status == ClaimStatus.Ended) return;
        if (left == 0) {
            uint40 reopened = uint40(block.timestamp) + c.challengeWindow;
            if (reopened > c.challengeDeadline) c.challengeDeadline = reopened;
            c.status = ClaimStatus.Revealed;
        }
        emit ClaimReleased(taskId, worker);
    }

    /// @inheritdoc IJobMarket
    /// @dev A claim already slashed by another of its disputes (Ended) has nothing left:
    /// returns 0 and counts the dispute off. Emits a {ClaimSlashed} event.
    function slashClaim(uint256 taskId, address worker) external onlyResolver returns (uint256 stake) {
        ClaimStore storage c = _claims[taskId][worker];
        ClaimStatus status = c.status;
        if (status == ClaimStatus.Ended) {
            c.disputes -= 1;
            return 0;
        }
        if (status != ClaimStatus.Disputed) revert JobMarketWrongStatus(taskId, worker, _statusOf(c));
        JobStore storage job = _jobs[taskId >> 32];
        _endClaim(job, taskId, worker, true);
        c.disputes -= 1;
        stake = job.stakePerTask;
        Buckets memory es = _escrowStakes;
        es.b -= uint120(stake);
        _escrowStakes = es;
        _addHeld(msg.sender, stake);
        emit ClaimSlashed(taskId, worker, stake);
    }

    /// @inheritdoc IJobMarket
    function takeRefereeFee(uint256 jobId) external onlyResolver returns (uint256 fee) {
        JobStore storage job = _jobs[jobId];
        fee = job.refereeFee;
        uint256 free = _free(job);
        if (fee > free) fee = free;
        if (fee == 0) return 0;
        job.escrow -= uint128(fee);
        Buckets memory es = _escrowStakes;
        es.a -= uint120(fee);
        _escrowStakes = es;
        _addHeld(msg.sender, fee);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IJobMarket
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IJobMarket
    function modules() external view returns (address registry, address resolver) {
        return (_registry, _resolver);
    }

    /// @inheritdoc IJobMarket
    function requesterOf(uint256 jobId) external view returns (address) {
        return _jobs[jobId].requester;
    }

    /// @notice Number of jobs posted; job ids run from 1 to this.
    function jobCount() external view returns (uint256) {
        return _jobCount;
    }

    /// @notice Task id of task `index` (0-based) of job `jobId`.
    /// Reverts for an index or job id that does not fit 32 bits (it would name another task).
    function taskIdOf(uint256 jobId, uint256 index) external pure returns (uint256) {
        if (index > type(uint32).max) revert JobMarketInvalidParameter("index");
        if (jobId > type(uint32).max) revert JobMarketInvalidParameter("jobId");
        return (jobId << 32) | index;
    }

    function getJob(uint256 jobId) external view returns (Job memory j) {
        JobStore storage s = _jobs[jobId];
        (j.requester, j.taskCount, j.redundancy, j.checkpointCount) =
            (s.requester, s.taskCount, s.redundancy, s.checkpointCount);
        (j.rewardPerTask, j.stakePerTask, j.keyWindow, j.submissionWindow) =
            (s.rewardPerTask, s.stakePerTask, s.keyWindow, s.submissionWindow);
        (j.griefingFee, j.refereeFee, j.revealWindow, j.challengeWindow) =
            (s.griefingFee, s.refereeFee, s.revealWindow, s.challengeWindow);
        (j.escrow, j.activeClaims, j.settledSlots, j.status) = (s.escrow, s.activeClaims, s.settledSlots, s.status);
        (j.shardsRoot, j.specCid, j.startsRoot, j.startsKeyed) = (s.shardsRoot, _cid(s), s.startsRoot, s.startsKeyed);
    }

    function getTask(uint256 taskId) external view returns (Task memory) {
        return _tasks[taskId];
    }

    /// @notice The claim of `worker` on task `taskId`. Semantics of the two hashes: while the
    /// claim is Committed, `commitment` is the worker's commitment and `root` is zero; from
    /// Revealed on (Revealed, Disputed, Finalized) `root` is the revealed root and `commitment`
    /// is zero (the root replaced it in storage; the commitment is in the {ResultCommitted}
    /// event); before the commit both are zero.
    function getClaim(uint256 taskId, address worker) external view returns (Claim memory) {
        ClaimStore storage c = _claims[taskId][worker];
        ClaimStatus status = _statusOf(c);
        bytes32 hash = c.hash;
        bool revealed = status >= ClaimStatus.Revealed && status != ClaimStatus.Ended;
        return Claim(
            status,
            c.keyDeadline,
            c.commitDeadline,
            c.challengeDeadline,
            revealed ? bytes32(0) : hash,
            revealed ? hash : bytes32(0),
            c.disputes
        );
    }

    /// @notice Where `verifier`'s request for job `jobId`'s data key stands.
    function verifierKeyStatus(uint256 jobId, address verifier) external view returns (VerifierKeyStatus) {
        return _verifierKeys[jobId][verifier];
    }

    /// @notice Time after which unrevealed committed claims of `taskId` can be timed out.
    function revealDeadline(uint256 taskId) external view returns (uint64) {
        return _tasks[taskId].revealFrom + _jobs[taskId >> 32].revealWindow;
    }

    /// @notice Amount `account` may withdraw now.
    function owed(address account) external view returns (uint256) {
        return _owed[account] & ~_LIVE;
    }

    /// @notice Tokens held on behalf of a module (verifier stakes, dispute bonds).
    function heldBy(address module) public view returns (uint256) {
        if (module == address(0)) return 0;
        if (module == _resolver) return _owedResolver.b;
        if (module == _registry) return _registryHeld;
        return 0;
    }

    /// @notice Escrows, worker stakes, module holdings and owed amounts, each summed.
    function buckets()
        external
        view
        returns (uint256 escrow, uint256 stakes, uint256 registryHeld, uint256 resolverHeld, uint256 owedTotal)
    {
        return (_escrowStakes.a, _escrowStakes.b, _registryHeld, _owedResolver.b, _owedResolver.a);
    }

    /// @notice Everything the market owes. Its token balance is at least this at every block,
    /// and equal unless tokens were sent to it outside the protocol (see {sweepSurplus}).
    function liabilities() external view returns (uint256) {
        return _liabilities();
    }

    // ------------------------------------------------------------------ internal

    function _liabilities() private view returns (uint256) {
        return uint256(_escrowStakes.a) + _escrowStakes.b + _registryHeld + _owedResolver.b + _owedResolver.a;
    }

    function _checkParams(JobParams calldata p) private pure {
        if (p.taskCount == 0) revert JobMarketInvalidParameter("taskCount");
        if (p.redundancy == 0) revert JobMarketInvalidParameter("redundancy");
        if (p.checkpointCount < 2) revert JobMarketInvalidParameter("checkpointCount");
        if (p.stakePerTask == 0) revert JobMarketInvalidParameter("stakePerTask");
        if (p.griefingFee > p.rewardPerTask) revert JobMarketInvalidParameter("griefingFee");
        if (p.keyWindow == 0) revert JobMarketInvalidParameter("keyWindow");
        if (p.submissionWindow == 0) revert JobMarketInvalidParameter("submissionWindow");
        if (p.revealWindow == 0) revert JobMarketInvalidParameter("revealWindow");
        if (p.challengeWindow == 0) revert JobMarketInvalidParameter("challengeWindow");
        if (bytes(p.specCid).length == 0) revert JobMarketInvalidParameter("specCid");
        if (p.startsRoot == bytes32(0)) revert JobMarketInvalidParameter("startsRoot");
    }

    function _openJob(uint256 jobId) private view returns (JobStore storage job) {
        job = _jobs[jobId];
        if (job.status != JobStatus.Open) {
            if (job.status == JobStatus.None) revert JobMarketUnknownJob(jobId);
            revert JobMarketJobNotOpen(jobId, job.status);
        }
    }

    function _claimIn(uint256 taskId, address worker, ClaimStatus expected)
        private
        view
        returns (ClaimStore storage c)
    {
        c = _claims[taskId][worker];
        ClaimStatus actual = c.status;
        // only a KeyDelivered claim can be Committed in fact: read its commitment then only
        if (actual == ClaimStatus.KeyDelivered && c.hash != bytes32(0)) actual = ClaimStatus.Committed;
        if (actual != expected) revert JobMarketWrongStatus(taskId, worker, actual);
    }

    /// @dev A claim's status: stored, except that a KeyDelivered claim with a commitment is
    /// Committed (`commit` writes only the commitment).
    function _statusOf(ClaimStore storage c) private view returns (ClaimStatus status) {
        status = c.status;
        if (status == ClaimStatus.KeyDelivered && c.hash != bytes32(0)) status = ClaimStatus.Committed;
    }

    /// @dev {Task} is one slot: revealFrom in bits 0-63, then active, committed, finalized and
    /// closed in 16 bits each (Solidity's own layout); read and written as one word.
    function _loadTask(uint256 taskId) private view returns (Task memory t) {
        Task storage s = _tasks[taskId];
        uint256 w;
        assembly ("memory-safe") {
            w := sload(s.slot)
        }
        t.revealFrom = uint64(w);
        t.active = uint16(w >> 64);
        t.committed = uint16(w >> 80);
        t.finalized = uint16(w >> 96);
        t.closed = uint16(w >> 112);
    }

    function _storeTask(uint256 taskId, Task memory t) private {
        Task storage s = _tasks[taskId];
        uint256 w = uint256(t.revealFrom) | (uint256(t.active) << 64) | (uint256(t.committed) << 80)
            | (uint256(t.finalized) << 96) | (uint256(t.closed) << 112);
        assembly ("memory-safe") {
            sstore(s.slot, w)
        }
    }

    /// @dev End a live claim without payment: it reads Ended (deadlines kept, hash cleared);
    /// its slot reopens, or closes if the job is cancelled.
    function _endClaim(JobStore storage job, uint256 taskId, address worker, bool wasCommitted) private {
        Task memory task = _loadTask(taskId);
        task.active -= 1;
        if (wasCommitted) task.committed -= 1;
        _storeTask(taskId, task);
        job.activeClaims -= 1;
        if (job.status != JobStatus.Open) job.settledSlots += 1;
        ClaimStore storage c = _claims[taskId][worker];
        (c.status, c.hash) = (ClaimStatus.Ended, bytes32(0));
    }

    /// @dev A forced job's claim whose seed is not opened yet (its seal's lowest bit clear).
    function _unopened(uint256 taskId, address worker) private view returns (bool) {
        uint256 seal = uint256(_seals[taskId][worker]);
        return seal != 0 && seal & 1 == 0;
    }

    function _free(JobStore storage job) private view returns (uint256) {
        uint256 reserved = (uint256(job.taskCount) * job.redundancy - job.settledSlots) * job.rewardPerTask;
        return job.escrow - reserved;
    }

    function _payFromEscrow(JobStore storage job, address to, uint256 amount) private {
        if (amount == 0) return;
        job.escrow -= uint128(amount);
        _escrowStakes.a -= uint120(amount);
        _credit(to, amount);
    }

    function _toEscrow(uint256 jobId, uint256 amount) private {
        JobStore storage job = _jobs[jobId];
        if (job.status == JobStatus.None) revert JobMarketUnknownJob(jobId);
        job.escrow += SafeCast.toUint128(amount);
        _escrowStakes.a += SafeCast.toUint120(amount);
    }

    function _credit(address to, uint256 amount) private {
        _owed[to] += amount;
        _owedResolver.a += SafeCast.toUint120(amount);
    }

    function _addHeld(address module, uint256 amount) private {
        if (module == _resolver) {
            _owedResolver.b += SafeCast.toUint120(amount);
        } else {
            _registryHeld += amount;
        }
    }

    function _takeHeld(uint256 amount) private {
        uint256 held = heldBy(msg.sender);
        if (held < amount) revert JobMarketInsufficientHeld(msg.sender, held, amount);
        // cannot underflow: checked just above
        unchecked {
            if (msg.sender == _resolver) {
                _owedResolver.b = uint120(held - amount);
            } else {
                _registryHeld = held - amount;
            }
        }
    }

    function _storeCid(JobStore storage job, string calldata cid) private {
        bytes calldata b = bytes(cid);
        if (b.length > 63) {
            job.cidTail = bytes32(uint256(0xff));
            job.specCidLong = cid;
            return;
        }
        bytes32 head;
        bytes32 tail;
        // reads 64 bytes from the calldata string's start; bytes past its end are masked off
        assembly ("memory-safe") {
            head := calldataload(b.offset)
            tail := calldataload(add(b.offset, 32))
        }
        uint256 len = b.length;
        if (len < 32) {
            head &= ~bytes32(type(uint256).max >> (8 * len));
            tail = 0;
        } else {
            tail &= ~bytes32(type(uint256).max >> (8 * (len - 32)));
        }
        (job.cidHead, job.cidTail) = (head, tail | bytes32(len));
    }

    function _cid(JobStore storage job) private view returns (string memory) {
        bytes32 tail = job.cidTail;
        uint256 len = uint8(uint256(tail));
        if (len == 0xff) return job.specCidLong;
        bytes memory out = new bytes(64);
        bytes32 head = job.cidHead;
        assembly ("memory-safe") {
            mstore(add(out, 32), head)
            mstore(add(out, 64), tail)
            mstore(out, len)
        }
        return string(out);
    }
}
