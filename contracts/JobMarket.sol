// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";

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
/// Money invariant: `token.balanceOf(this) == liabilities()` = escrows + worker stakes +
/// module holdings (verifier stakes in the {VerifierRegistry}, challenge bonds in the
/// {DisputeResolver}) + amounts owed and not withdrawn. The owner can pause new jobs only; no
/// function lets anyone move funds outside these rules.
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
        Finalized
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
    struct Claim {
        ClaimStatus status;
        uint64 keyDeadline;
        uint64 commitDeadline;
        uint64 challengeDeadline;
        bytes32 commitment;
        bytes32 root;
    }

    /// @notice Share of a worker's stake forfeited when it misses its commit or reveal deadline;
    /// it goes to the job's escrow (the requester), the rest back to the worker.
    uint256 public constant MISSED_DEADLINE_PENALTY_BPS = 5_000;
    uint256 private constant _BPS = 10_000;

    IERC20 private immutable _token;
    address private _registry;
    address private _resolver;

    uint256 private _jobCount;
    mapping(uint256 jobId => Job) private _jobs;
    mapping(uint256 taskId => Task) private _tasks;
    mapping(uint256 taskId => mapping(address worker => Claim)) private _claims;
    mapping(address account => uint256) private _owed;
    mapping(address module => uint256) private _held;

    uint256 private _totalEscrow;
    uint256 private _totalStakes;
    uint256 private _totalOwed;

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

    error JobMarketNotModule(address caller);
    error JobMarketModulesAlreadySet();
    error JobMarketModulesNotSet();
    error JobMarketInvalidParameter(bytes32 name);
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

    modifier onlyModule() {
        if (msg.sender != _registry && msg.sender != _resolver) revert JobMarketNotModule(msg.sender);
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

    // ------------------------------------------------------------------ requester

    /// @notice Post a job and pull `taskCount * redundancy * rewardPerTask + refereeFeePool`
    /// from the caller (approve the market first). Returns the new job id (from 1).
    /// Emits a {JobPosted} event.
    function postJob(JobParams calldata p) external whenNotPaused nonReentrant returns (uint256 jobId) {
        if (_resolver == address(0)) revert JobMarketModulesNotSet();
        _checkParams(p);
        uint256 slots = uint256(p.taskCount) * p.redundancy;
        uint256 escrow = slots * p.rewardPerTask + p.refereeFeePool;
        jobId = ++_jobCount;
        Job storage job = _jobs[jobId];
        job.requester = msg.sender;
        job.taskCount = p.taskCount;
        job.redundancy = p.redundancy;
        job.checkpointCount = p.checkpointCount;
        job.rewardPerTask = p.rewardPerTask;
        job.stakePerTask = p.stakePerTask;
        job.keyWindow = p.keyWindow;
        job.submissionWindow = p.submissionWindow;
        job.griefingFee = p.griefingFee;
        job.refereeFee = uint96(p.refereeFeePool / slots);
        job.revealWindow = p.revealWindow;
        job.challengeWindow = p.challengeWindow;
        job.escrow = uint128(escrow);
        job.status = JobStatus.Open;
        job.shardsRoot = p.shardsRoot;
        job.specCid = p.specCid;
        _totalEscrow += escrow;
        emit JobPosted(
            jobId, msg.sender, p.specCid, p.shardsRoot, p.taskCount, p.redundancy, p.checkpointCount, escrow
        );
        _token.safeTransferFrom(msg.sender, address(this), escrow);
    }

    /// @notice Stop new claims on the job; the rewards of unclaimed slots and the free escrow
    /// become withdrawable by the requester. Running claims continue; `closeJob` sweeps the
    /// rest when they end. Emits a {JobCancelled} event.
    function cancelJob(uint256 jobId) external nonReentrant {
        Job storage job = _openJob(jobId);
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
    function closeJob(uint256 jobId) external nonReentrant {
        Job storage job = _jobs[jobId];
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
        Job storage job = _jobs[taskId >> 32];
        if (msg.sender != job.requester) revert JobMarketNotRequester(taskId >> 32, msg.sender);
        Claim storage c = _claimIn(taskId, worker, ClaimStatus.Claimed);
        if (block.timestamp > c.keyDeadline) revert JobMarketDeadlinePassed(taskId, worker, c.keyDeadline);
        c.status = ClaimStatus.KeyDelivered;
        emit KeyDelivered(taskId, worker, envelope);
    }

    // ------------------------------------------------------------------ worker

    /// @notice Claim a slot of task `taskId`, locking the job's `stakePerTask` (approve first).
    /// `pubKey` is the caller's 64-byte uncompressed secp256k1 key (without the 0x04 prefix);
    /// its keccak must give the caller's address. Emits a {TaskClaimed} event.
    function claim(uint256 taskId, bytes calldata pubKey) external nonReentrant {
        uint256 jobId = taskId >> 32;
        Job storage job = _openJob(jobId);
        if (uint32(taskId) >= job.taskCount) revert JobMarketTaskOutOfRange(taskId);
        address derived = pubKey.length == 64 ? address(uint160(uint256(keccak256(pubKey)))) : address(0);
        if (derived != msg.sender) revert JobMarketBadPubKey(msg.sender, derived);
        Task storage task = _tasks[taskId];
        if (task.active + task.finalized + task.closed >= job.redundancy) revert JobMarketTaskFull(taskId);
        Claim storage c = _claims[taskId][msg.sender];
        if (c.status != ClaimStatus.None) revert JobMarketWrongStatus(taskId, msg.sender, c.status);
        uint64 keyDeadline = uint64(block.timestamp) + job.keyWindow;
        uint64 commitDeadline = keyDeadline + job.submissionWindow;
        c.status = ClaimStatus.Claimed;
        c.keyDeadline = keyDeadline;
        c.commitDeadline = commitDeadline;
        task.active += 1;
        if (commitDeadline > task.revealFrom) task.revealFrom = commitDeadline;
        job.activeClaims += 1;
        uint256 stake = job.stakePerTask;
        _totalStakes += stake;
        emit TaskClaimed(taskId, jobId, msg.sender, pubKey, keyDeadline, commitDeadline);
        _token.safeTransferFrom(msg.sender, address(this), stake);
    }

    /// @notice After a missed key deadline anyone may end the claim: the worker gets its stake
    /// back plus the job's griefing fee out of the free escrow (if that is short, the slot
    /// closes and its reward pays the fee); otherwise the slot reopens.
    /// Emits a {ClaimAbandoned} event.
    function abandon(uint256 taskId, address worker) external nonReentrant {
        Claim storage c = _claimIn(taskId, worker, ClaimStatus.Claimed);
        if (block.timestamp <= c.keyDeadline) revert JobMarketTooEarly(taskId, worker, c.keyDeadline);
        Job storage job = _jobs[taskId >> 32];
        _endClaim(job, taskId, worker, false);
        uint256 fee = job.griefingFee;
        if (_free(job) < fee && job.status == JobStatus.Open) {
            // the requester's free escrow cannot pay: this slot closes and its reward pays
            job.settledSlots += 1;
            _tasks[taskId].closed += 1;
        }
        uint256 free = _free(job);
        if (fee > free) fee = free;
        _payFromEscrow(job, worker, fee);
        _releaseStake(worker, job.stakePerTask);
        emit ClaimAbandoned(taskId, worker, fee);
    }

    /// @notice Commit to a checkpoint root: `commitment = keccak256(abi.encode(root, msg.sender,
    /// salt))`, after the key arrived and before the commit deadline.
    /// Emits a {ResultCommitted} event.
    function commit(uint256 taskId, bytes32 commitment) external {
        Claim storage c = _claimIn(taskId, msg.sender, ClaimStatus.KeyDelivered);
        if (block.timestamp > c.commitDeadline) revert JobMarketDeadlinePassed(taskId, msg.sender, c.commitDeadline);
        c.status = ClaimStatus.Committed;
        c.commitment = commitment;
        _tasks[taskId].committed += 1;
        emit ResultCommitted(taskId, msg.sender, commitment);
    }

    /// @notice Reveal the committed root and the manifest CID. Reveals open when every slot of
    /// the task has committed, or after the task's `revealFrom`; they close `revealWindow`
    /// later. Starts the challenge window. Emits a {ResultRevealed} event.
    function reveal(uint256 taskId, bytes32 root, bytes32 salt, string calldata manifestCid) external {
        Claim storage c = _claimIn(taskId, msg.sender, ClaimStatus.Committed);
        Job storage job = _jobs[taskId >> 32];
        Task storage task = _tasks[taskId];
        uint64 revealFrom = task.revealFrom;
        if (task.committed < job.redundancy && block.timestamp <= revealFrom) {
            revert JobMarketTooEarly(taskId, msg.sender, revealFrom);
        }
        uint64 revealDeadline = revealFrom + job.revealWindow;
        if (block.timestamp > revealDeadline) revert JobMarketDeadlinePassed(taskId, msg.sender, revealDeadline);
        if (keccak256(abi.encode(root, msg.sender, salt)) != c.commitment) {
            revert JobMarketCommitMismatch(taskId, msg.sender);
        }
        uint64 challengeDeadline = uint64(block.timestamp) + job.challengeWindow;
        c.status = ClaimStatus.Revealed;
        c.root = root;
        c.challengeDeadline = challengeDeadline;
        emit ResultRevealed(taskId, msg.sender, root, manifestCid, challengeDeadline);
    }

    /// @notice Anyone may time out a worker that missed its commit deadline (key delivered, no
    /// commit) or its reveal deadline (committed, no reveal): it forfeits
    /// MISSED_DEADLINE_PENALTY_BPS of its stake to the job's escrow, gets the rest back, and
    /// the slot reopens. Emits a {ClaimTimedOut} event.
    function timeout(uint256 taskId, address worker) external nonReentrant {
        Claim storage c = _claims[taskId][worker];
        Job storage job = _jobs[taskId >> 32];
        uint64 deadline;
        if (c.status == ClaimStatus.KeyDelivered) {
            deadline = c.commitDeadline;
        } else if (c.status == ClaimStatus.Committed) {
            deadline = _tasks[taskId].revealFrom + job.revealWindow;
        } else {
            revert JobMarketWrongStatus(taskId, worker, c.status);
        }
        if (block.timestamp <= deadline) revert JobMarketTooEarly(taskId, worker, deadline);
        _endClaim(job, taskId, worker, c.status == ClaimStatus.Committed);
        uint256 stake = job.stakePerTask;
        uint256 penalty = (stake * MISSED_DEADLINE_PENALTY_BPS) / _BPS;
        _totalStakes -= stake;
        job.escrow += uint128(penalty);
        _totalEscrow += penalty;
        _credit(worker, stake - penalty);
        emit ClaimTimedOut(taskId, worker, penalty);
    }

    /// @notice Anyone may finalize a revealed claim after its challenge window: the reward and
    /// the stake become withdrawable by the worker. Emits a {ClaimFinalized} event.
    function finalize(uint256 taskId, address worker) external nonReentrant {
        Claim storage c = _claimIn(taskId, worker, ClaimStatus.Revealed);
        if (block.timestamp <= c.challengeDeadline) revert JobMarketTooEarly(taskId, worker, c.challengeDeadline);
        Job storage job = _jobs[taskId >> 32];
        Task storage task = _tasks[taskId];
        c.status = ClaimStatus.Finalized;
        task.active -= 1;
        task.finalized += 1;
        job.activeClaims -= 1;
        job.settledSlots += 1;
        uint256 reward = job.rewardPerTask;
        _payFromEscrow(job, worker, reward);
        _releaseStake(worker, job.stakePerTask);
        emit ClaimFinalized(taskId, worker, reward);
    }

    /// @notice Transfer everything the caller is owed to the caller. Emits a {Withdrawn} event.
    function withdraw() external nonReentrant {
        uint256 amount = _owed[msg.sender];
        if (amount == 0) revert JobMarketNothingOwed(msg.sender);
        _owed[msg.sender] = 0;
        _totalOwed -= amount;
        emit Withdrawn(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ modules

    /// @inheritdoc IJobMarket
    function collect(address from, uint256 amount) external onlyModule nonReentrant {
        _held[msg.sender] += amount;
        _token.safeTransferFrom(from, address(this), amount);
    }

    /// @inheritdoc IJobMarket
    function credit(address to, uint256 amount) external onlyModule {
        _takeHeld(amount);
        _credit(to, amount);
    }

    /// @inheritdoc IJobMarket
    function moveHeld(address toModule, uint256 amount) external onlyModule {
        if (toModule != _registry && toModule != _resolver) revert JobMarketNotModule(toModule);
        _takeHeld(amount);
        _held[toModule] += amount;
    }

    /// @inheritdoc IJobMarket
    function creditEscrow(uint256 jobId, uint256 amount) external onlyModule {
        Job storage job = _jobs[jobId];
        if (job.status == JobStatus.None) revert JobMarketUnknownJob(jobId);
        _takeHeld(amount);
        job.escrow += uint128(amount);
        _totalEscrow += amount;
    }

    /// @inheritdoc IJobMarket
    /// @dev Emits a {ClaimDisputed} event.
    function openDispute(uint256 taskId, address worker) external onlyResolver returns (DisputedClaim memory d) {
        Claim storage c = _claimIn(taskId, worker, ClaimStatus.Revealed);
        if (block.timestamp > c.challengeDeadline) {
            revert JobMarketDeadlinePassed(taskId, worker, c.challengeDeadline);
        }
        c.status = ClaimStatus.Disputed;
        Job storage job = _jobs[taskId >> 32];
        d = DisputedClaim(taskId >> 32, job.requester, c.root, job.checkpointCount);
        emit ClaimDisputed(taskId, worker);
    }

    /// @inheritdoc IJobMarket
    /// @dev Emits a {ClaimReleased} event.
    function releaseClaim(uint256 taskId, address worker) external onlyResolver {
        _claimIn(taskId, worker, ClaimStatus.Disputed).status = ClaimStatus.Revealed;
        emit ClaimReleased(taskId, worker);
    }

    /// @inheritdoc IJobMarket
    /// @dev Emits a {ClaimSlashed} event.
    function slashClaim(uint256 taskId, address worker) external onlyResolver returns (uint256 stake) {
        _claimIn(taskId, worker, ClaimStatus.Disputed);
        Job storage job = _jobs[taskId >> 32];
        _endClaim(job, taskId, worker, true);
        stake = job.stakePerTask;
        _totalStakes -= stake;
        _held[msg.sender] += stake;
        emit ClaimSlashed(taskId, worker, stake);
    }

    /// @inheritdoc IJobMarket
    function takeRefereeFee(uint256 jobId) external onlyResolver returns (uint256 fee) {
        Job storage job = _jobs[jobId];
        fee = job.refereeFee;
        uint256 free = _free(job);
        if (fee > free) fee = free;
        job.escrow -= uint128(fee);
        _totalEscrow -= fee;
        _held[msg.sender] += fee;
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

    /// @notice Number of jobs posted; job ids run from 1 to this.
    function jobCount() external view returns (uint256) {
        return _jobCount;
    }

    /// @notice Task id of task `index` (0-based) of job `jobId`.
    function taskIdOf(uint256 jobId, uint256 index) external pure returns (uint256) {
        return (jobId << 32) | uint32(index);
    }

    function getJob(uint256 jobId) external view returns (Job memory) {
        return _jobs[jobId];
    }

    function getTask(uint256 taskId) external view returns (Task memory) {
        return _tasks[taskId];
    }

    function getClaim(uint256 taskId, address worker) external view returns (Claim memory) {
        return _claims[taskId][worker];
    }

    /// @notice Time after which unrevealed committed claims of `taskId` can be timed out.
    function revealDeadline(uint256 taskId) external view returns (uint64) {
        return _tasks[taskId].revealFrom + _jobs[taskId >> 32].revealWindow;
    }

    /// @notice Amount `account` may withdraw now.
    function owed(address account) external view returns (uint256) {
        return _owed[account];
    }

    /// @notice Tokens held on behalf of a module (verifier stakes, dispute bonds).
    function heldBy(address module) external view returns (uint256) {
        return _held[module];
    }

    /// @notice Escrows, worker stakes, module holdings and owed amounts, each summed.
    function buckets()
        external
        view
        returns (uint256 escrow, uint256 stakes, uint256 registryHeld, uint256 resolverHeld, uint256 owedTotal)
    {
        return (_totalEscrow, _totalStakes, _held[_registry], _held[_resolver], _totalOwed);
    }

    /// @notice Everything the market owes; equals its token balance at every block.
    function liabilities() external view returns (uint256) {
        return _totalEscrow + _totalStakes + _held[_registry] + _held[_resolver] + _totalOwed;
    }

    // ------------------------------------------------------------------ internal

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
    }

    function _openJob(uint256 jobId) private view returns (Job storage job) {
        job = _jobs[jobId];
        if (job.status != JobStatus.Open) {
            if (job.status == JobStatus.None) revert JobMarketUnknownJob(jobId);
            revert JobMarketJobNotOpen(jobId, job.status);
        }
    }

    function _claimIn(uint256 taskId, address worker, ClaimStatus expected) private view returns (Claim storage c) {
        c = _claims[taskId][worker];
        if (c.status != expected) revert JobMarketWrongStatus(taskId, worker, c.status);
    }

    /// @dev Remove a live claim; its slot reopens, or closes if the job is cancelled.
    function _endClaim(Job storage job, uint256 taskId, address worker, bool wasCommitted) private {
        Task storage task = _tasks[taskId];
        task.active -= 1;
        if (wasCommitted) task.committed -= 1;
        job.activeClaims -= 1;
        if (job.status != JobStatus.Open) job.settledSlots += 1;
        delete _claims[taskId][worker];
    }

    function _free(Job storage job) private view returns (uint256) {
        uint256 reserved = (uint256(job.taskCount) * job.redundancy - job.settledSlots) * job.rewardPerTask;
        return job.escrow - reserved;
    }

    function _payFromEscrow(Job storage job, address to, uint256 amount) private {
        if (amount == 0) return;
        job.escrow -= uint128(amount);
        _totalEscrow -= amount;
        _credit(to, amount);
    }

    function _releaseStake(address worker, uint256 stake) private {
        _totalStakes -= stake;
        _credit(worker, stake);
    }

    function _credit(address to, uint256 amount) private {
        _owed[to] += amount;
        _totalOwed += amount;
    }

    function _takeHeld(uint256 amount) private {
        uint256 held = _held[msg.sender];
        if (held < amount) revert JobMarketInsufficientHeld(msg.sender, held, amount);
        // cannot underflow: checked just above
        unchecked {
            _held[msg.sender] = held - amount;
        }
    }
}
