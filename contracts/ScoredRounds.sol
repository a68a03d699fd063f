// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IVerifierRegistry} from "./interfaces/IVerifierRegistry.sol";

/// @title ScoredRounds
/// @notice Scored mode (Templar-style): a job of `windows` windows in which any staked worker
/// submits an update, registered validators score every update, and the window's reward is
/// split by the validators' median score.
///
/// Each window has four phases, back to back, all of fixed length:
/// 1. Submit: a worker that joined the job (`joinAsWorker`, locking `workerStake`) commits
///    `keccak256(abi.encode(bytes32 updateHash, address worker, bytes32 salt))`, `updateHash`
///    being the sha256 of its encrypted update on IPFS. Nobody sees another's update before
///    the window closes, and a commitment binds its sender, so it cannot be replayed.
/// 2. Reveal: the worker reveals `updateHash`, `salt` and the update's CID.
/// 3. Score commit: each validator (active in the {VerifierRegistry}, joined with
///    `validatorStake`) commits `keccak256(abi.encode(jobId, window, scores, copiers,
///    globalModel, validator, salt))`: one signed score per submission of the window, a bitmask
///    of the submissions it found to copy another, and the hash of the window's start model
///    (the global model the job's aggregation rule gives from the previous window's settled
///    scores; the initial model in window 0).
/// 4. Score reveal: validators reveal; then anyone may `settle` the window (windows settle
///    in order).
///
/// Settlement: a submission's score is the median of the revealed validators' scores (so a
/// minority of liars moves nothing); a submission more than half of them flag as a copy scores
/// zero and its worker loses `slashBps` of its stake; a committed but unrevealed submission
/// scores zero and loses the same. `rewardPerWindow` is split pro rata among positive scores.
/// The start-model hash more than half the revealing validators agree on is recorded as the
/// job's `globalModel` (attested one window after the rule produced it). A validator far from the aggregate (L1 distance of its scores from the
/// medians above `deviationBps` of their L1 norm plus `deviationFloor`, or a global hash
/// against the majority), or one that committed and did not reveal, loses `slashBps` of its
/// stake; the others share `validatorFeePerWindow` equally. Whatever is not paid (rounding,
/// no positive score, no validator) and every slashed amount is credited to the requester.
/// Stakes return with `leave` once every window is settled. Every payout is a pull
/// (`withdraw`).
///
/// Keys: the job's data and updates are encrypted under one data key that never goes
/// on-chain in the clear. Joining publishes the account's public key in a {KeyRequested}
/// event (a worker passes its own, checked against its address; a validator's is the one it
/// registered); only the job's requester may answer, once per account, with `deliverKey`:
/// the data key wrapped to that public key (docs/spec section 16). A stranger cannot hand a
/// worker a key of its own making, and nobody is answered twice.
///
/// Money invariant: `token.balanceOf(this) >= liabilities()` = escrows + stakes + amounts owed
/// and not withdrawn, with equality unless someone sent tokens here with a plain transfer.
contract ScoredRounds is ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    enum Phase {
        None,
        Pending,
        Submit,
        Reveal,
        ScoreCommit,
        ScoreReveal,
        Settleable,
        Settled
    }

    enum Role {
        None,
        Worker,
        Validator
    }

    /// @notice Everything `postJob` takes; windows are in seconds.
    struct JobParams {
        string specCid;
        bytes32 initialModel;
        uint16 windows;
        uint16 maxSubmissions;
        uint16 maxValidators;
        uint16 deviationBps;
        uint16 slashBps;
        uint96 rewardPerWindow;
        uint96 validatorFeePerWindow;
        uint96 workerStake;
        uint96 validatorStake;
        uint64 deviationFloor;
        uint32 submitWindow;
        uint32 revealWindow;
        uint32 scoreCommitWindow;
        uint32 scoreRevealWindow;
    }

    struct Job {
        address requester;
        uint40 start;
        uint16 settled;
        uint16 validators;
        uint128 escrow;
        bytes32 globalModel;
    }

    struct Submission {
        address worker;
        bool revealed;
        bytes32 commitment;
        bytes32 updateHash;
    }

    struct ScoreVote {
        bytes32 commitment;
        bool revealed;
        uint256 copiers;
        bytes32 globalModel;
        int64[] scores;
    }

    /// @notice What `settle` decided for one submission.
    struct Outcome {
        address worker;
        int64 median;
        int64 score;
        bool copier;
        uint256 payout;
    }

    uint256 public constant MAX_SUBMISSIONS = 64;
    uint256 public constant MAX_VALIDATORS = 16;

    IERC20 private immutable _token;
    IVerifierRegistry private immutable _registry;

    uint256 private _jobCount;
    mapping(uint256 jobId => Job) private _jobs;
    mapping(uint256 jobId => JobParams) private _params;
    mapping(uint256 jobId => mapping(address account => Role)) private _roles;
    mapping(uint256 jobId => mapping(address account => uint256)) private _stakes;
    mapping(uint256 jobId => address[]) private _validators;
    mapping(uint256 jobId => mapping(uint256 window => Submission[])) private _submissions;
    mapping(uint256 jobId => mapping(uint256 window => mapping(address worker => bool))) private _submitted;
    mapping(uint256 jobId => mapping(uint256 window => mapping(address validator => ScoreVote))) private _votes;
    mapping(address account => uint256) private _owed;
    mapping(uint256 jobId => mapping(address account => bool)) private _keyRequested;
    uint256 private _escrowTotal;
    uint256 private _stakeTotal;
    uint256 private _owedTotal;

    event JobPosted(uint256 indexed jobId, address indexed requester, string specCid, uint256 escrow);
    event Joined(uint256 indexed jobId, address indexed account, Role role, uint256 stake);
    event UpdateCommitted(uint256 indexed jobId, uint256 indexed window, address indexed worker, uint256 index);
    event UpdateRevealed(uint256 indexed jobId, uint256 indexed window, uint256 index, bytes32 updateHash, string cid);
    event ScoresCommitted(uint256 indexed jobId, uint256 indexed window, address indexed validator);
    event ScoresRevealed(uint256 indexed jobId, uint256 indexed window, address indexed validator, int64[] scores,
        uint256 copiers, bytes32 globalModel);
    event SubmissionSettled(uint256 indexed jobId, uint256 indexed window, uint256 index, address worker,
        int64 score, bool copier, uint256 payout);
    event Slashed(uint256 indexed jobId, uint256 indexed window, address indexed account, uint256 amount);
    event ValidatorPaid(uint256 indexed jobId, uint256 indexed window, address indexed validator, uint256 fee);
    event WindowSettled(uint256 indexed jobId, uint256 indexed window, bytes32 globalModel, uint256 paid,
        uint256 refunded);
    event Left(uint256 indexed jobId, address indexed account, uint256 stake);
    event Withdrawn(address indexed account, uint256 amount);
    event KeyRequested(uint256 indexed jobId, address indexed account, bytes pubKey);
    event KeyDelivered(uint256 indexed jobId, address indexed account, bytes envelope);

    error ScoredRoundsBadParams(string field);
    error ScoredRoundsNoJob(uint256 jobId);
    error ScoredRoundsWrongPhase(uint256 jobId, uint256 window, Phase expected, Phase actual);
    error ScoredRoundsAlreadyJoined(uint256 jobId, address account, Role role);
    error ScoredRoundsNotRegistered(address validator);
    error ScoredRoundsFull(uint256 jobId, uint256 limit);
    error ScoredRoundsNotStaked(uint256 jobId, address account, Role role);
    error ScoredRoundsAlreadySubmitted(uint256 jobId, uint256 window, address worker);
    error ScoredRoundsNotYours(uint256 jobId, uint256 window, uint256 index, address worker);
    error ScoredRoundsBadReveal(uint256 jobId, uint256 window, address account);
    error ScoredRoundsAlreadyRevealed(uint256 jobId, uint256 window, address account);
    error ScoredRoundsNotCommitted(uint256 jobId, uint256 window, address account);
    error ScoredRoundsScoreCount(uint256 expected, uint256 actual);
    error ScoredRoundsOutOfOrder(uint256 jobId, uint256 window, uint256 next);
    error ScoredRoundsJobRunning(uint256 jobId, uint256 settled, uint256 windows);
    error ScoredRoundsNothingOwed(address account);
    error ScoredRoundsBadPubKey(address caller, address derived);
    error ScoredRoundsNotRequester(uint256 jobId, address caller);
    error ScoredRoundsNoKeyRequest(uint256 jobId, address account);

    constructor(IERC20 token, IVerifierRegistry registry) {
        _token = token;
        _registry = registry;
    }

    // ------------------------------------------------------------------ requester

    /// @notice Post a scored job starting now; escrows `windows * (rewardPerWindow +
    /// validatorFeePerWindow)` (approve this contract first).
    /// Emits a {JobPosted} event.
    function postJob(JobParams calldata p) external nonReentrant returns (uint256 jobId) {
        _check(p);
        uint256 escrow = uint256(p.windows) * (uint256(p.rewardPerWindow) + p.validatorFeePerWindow);
        jobId = ++_jobCount;
        _jobs[jobId] = Job({
            requester: msg.sender,
            start: uint40(block.timestamp),
            settled: 0,
            validators: 0,
            escrow: uint128(escrow),
            globalModel: p.initialModel
        });
        _params[jobId] = p;
        _escrowTotal += escrow;
        emit JobPosted(jobId, msg.sender, p.specCid, escrow);
        _token.safeTransferFrom(msg.sender, address(this), escrow);
    }

    // ------------------------------------------------------------------ joining and leaving

    /// @notice Lock `workerStake` to submit updates in this job's windows, and ask for the job's
    /// data key: `pubKey` is the caller's 64-byte uncompressed secp256k1 key (without the 0x04
    /// prefix), whose keccak must give the caller's address.
    /// Emits a {Joined} and a {KeyRequested} event.
    function joinAsWorker(uint256 jobId, bytes calldata pubKey) external nonReentrant {
        JobParams storage p = _paramsOf(jobId);
        address derived = pubKey.length == 64 ? address(uint160(uint256(keccak256(pubKey)))) : address(0);
        if (derived != msg.sender) revert ScoredRoundsBadPubKey(msg.sender, derived);
        _join(jobId, Role.Worker, p.workerStake);
        _requestKey(jobId, pubKey);
    }

    /// @notice Lock `validatorStake` to score this job's windows (active registry verifiers only;
    /// an address cannot be both worker and validator of one job), and ask for the job's data
    /// key, wrapped to the public key the validator registered.
    /// Emits a {Joined} and a {KeyRequested} event.
    function joinAsValidator(uint256 jobId) external nonReentrant {
        JobParams storage p = _paramsOf(jobId);
        if (!_registry.isActive(msg.sender)) revert ScoredRoundsNotRegistered(msg.sender);
        Job storage j = _jobs[jobId];
        if (j.validators >= p.maxValidators) revert ScoredRoundsFull(jobId, p.maxValidators);
        j.validators += 1;
        _validators[jobId].push(msg.sender);
        _join(jobId, Role.Validator, p.validatorStake);
        _requestKey(jobId, _registry.pubKeyOf(msg.sender));
    }

    /// @notice The job's requester answers a {KeyRequested}: `envelope` is the data key
    /// wrapped to the public key that `account` joined with. Once per account.
    /// Emits a {KeyDelivered} event.
    function deliverKey(uint256 jobId, address account, bytes calldata envelope) external {
        if (_jobs[jobId].requester != msg.sender) revert ScoredRoundsNotRequester(jobId, msg.sender);
        if (!_keyRequested[jobId][account]) revert ScoredRoundsNoKeyRequest(jobId, account);
        _keyRequested[jobId][account] = false;
        emit KeyDelivered(jobId, account, envelope);
    }

    /// @notice Once every window is settled, credit the caller's remaining stake to its balance.
    /// Emits a {Left} event.
    function leave(uint256 jobId) external nonReentrant {
        JobParams storage p = _paramsOf(jobId);
        Job storage j = _jobs[jobId];
        if (j.settled < p.windows) revert ScoredRoundsJobRunning(jobId, j.settled, p.windows);
        Role role = _roles[jobId][msg.sender];
        uint256 stake = _stakes[jobId][msg.sender];
        if (role == Role.None || stake == 0) revert ScoredRoundsNotStaked(jobId, msg.sender, role);
        _stakes[jobId][msg.sender] = 0;
        _stakeTotal -= stake;
        _credit(msg.sender, stake);
        emit Left(jobId, msg.sender, stake);
    }

    /// @notice Move everything owed to the caller to it.
    /// Emits a {Withdrawn} event.
    function withdraw() external nonReentrant {
        uint256 amount = _owed[msg.sender];
        if (amount == 0) revert ScoredRoundsNothingOwed(msg.sender);
        _owed[msg.sender] = 0;
        _owedTotal -= amount;
        emit Withdrawn(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ workers

    /// @notice Commit an update to `window` during its submit phase; returns its index.
    /// Emits an {UpdateCommitted} event.
    function submit(uint256 jobId, uint256 window, bytes32 commitment) external returns (uint256 index) {
        JobParams storage p = _paramsOf(jobId);
        _inPhase(jobId, window, Phase.Submit);
        _staked(jobId, Role.Worker, p.workerStake);
        if (_submitted[jobId][window][msg.sender]) revert ScoredRoundsAlreadySubmitted(jobId, window, msg.sender);
        Submission[] storage subs = _submissions[jobId][window];
        if (subs.length >= p.maxSubmissions) revert ScoredRoundsFull(jobId, p.maxSubmissions);
        _submitted[jobId][window][msg.sender] = true;
        index = subs.length;
        subs.push(Submission({worker: msg.sender, revealed: false, commitment: commitment, updateHash: 0}));
        emit UpdateCommitted(jobId, window, msg.sender, index);
    }

    /// @notice Reveal submission `index` of `window` during its reveal phase.
    /// Emits an {UpdateRevealed} event.
    function revealUpdate(uint256 jobId, uint256 window, uint256 index, bytes32 updateHash, bytes32 salt,
        string calldata cid) external
    {
        _paramsOf(jobId);
        _inPhase(jobId, window, Phase.Reveal);
        Submission[] storage subs = _submissions[jobId][window];
        if (index >= subs.length || subs[index].worker != msg.sender) {
            revert ScoredRoundsNotYours(jobId, window, index, msg.sender);
        }
        Submission storage s = subs[index];
        if (s.revealed) revert ScoredRoundsAlreadyRevealed(jobId, window, msg.sender);
        if (keccak256(abi.encode(updateHash, msg.sender, salt)) != s.commitment) {
            revert ScoredRoundsBadReveal(jobId, window, msg.sender);
        }
        s.revealed = true;
        s.updateHash = updateHash;
        emit UpdateRevealed(jobId, window, index, updateHash, cid);
    }

    // ------------------------------------------------------------------ validators

    /// @notice Commit a score vector for `window` during its score-commit phase (see the
    /// contract's notice for what the commitment hashes).
    /// Emits a {ScoresCommitted} event.
    function commitScores(uint256 jobId, uint256 window, bytes32 commitment) external {
        JobParams storage p = _paramsOf(jobId);
        _inPhase(jobId, window, Phase.ScoreCommit);
        _staked(jobId, Role.Validator, p.validatorStake);
        ScoreVote storage v = _votes[jobId][window][msg.sender];
        if (v.commitment != 0) revert ScoredRoundsAlreadySubmitted(jobId, window, msg.sender);
        v.commitment = commitment;
        emit ScoresCommitted(jobId, window, msg.sender);
    }

    /// @notice Reveal the committed scores (one per submission of the window, in index order),
    /// copy flags and global model hash during the score-reveal phase.
    /// Emits a {ScoresRevealed} event.
    function revealScores(uint256 jobId, uint256 window, int64[] calldata scores, uint256 copiers,
        bytes32 globalModel, bytes32 salt) external
    {
        _paramsOf(jobId);
        _inPhase(jobId, window, Phase.ScoreReveal);
        ScoreVote storage v = _votes[jobId][window][msg.sender];
        if (v.commitment == 0) revert ScoredRoundsNotCommitted(jobId, window, msg.sender);
        if (v.revealed) revert ScoredRoundsAlreadyRevealed(jobId, window, msg.sender);
        uint256 n = _submissions[jobId][window].length;
        if (scores.length != n) revert ScoredRoundsScoreCount(n, scores.length);
        bytes32 expected = scoreCommitment(jobId, window, scores, copiers, globalModel, msg.sender, salt);
        if (expected != v.commitment) revert ScoredRoundsBadReveal(jobId, window, msg.sender);
        v.revealed = true;
        v.copiers = copiers;
        v.globalModel = globalModel;
        v.scores = scores;
        emit ScoresRevealed(jobId, window, msg.sender, scores, copiers, globalModel);
    }

    // ------------------------------------------------------------------ settlement

    /// @notice Settle `window` (the next unsettled one) after its score-reveal phase: medians,
    /// copy verdicts, pro-rata rewards, validator fees, slashes and the attested global model.
    /// Emits a {WindowSettled} event (and {SubmissionSettled}, {Slashed}, {ValidatorPaid}).
    function settle(uint256 jobId, uint256 window) external nonReentrant {
        JobParams storage p = _paramsOf(jobId);
        Job storage j = _jobs[jobId];
        if (window != j.settled) revert ScoredRoundsOutOfOrder(jobId, window, j.settled);
        _inPhase(jobId, window, Phase.Settleable);
        j.settled = uint16(window + 1);
        uint256 budget = uint256(p.rewardPerWindow) + p.validatorFeePerWindow;
        j.escrow -= uint128(budget);
        _escrowTotal -= budget;

        (address[] memory revealed, uint256 refund) = _validatorTurnout(jobId, window, p);
        Outcome[] memory out = _outcomes(jobId, window, revealed);
        uint256 paid = _payWorkers(jobId, window, p, out);
        refund += p.rewardPerWindow - paid;
        bytes32 model = _majorityModel(jobId, window, revealed);
        if (model != 0) j.globalModel = model;
        uint256 fees;
        (fees, refund) = _payValidators(jobId, window, p, revealed, out, model, refund);
        refund += p.validatorFeePerWindow - fees;
        if (refund != 0) _credit(j.requester, refund);
        emit WindowSettled(jobId, window, j.globalModel, paid + fees, refund);
    }

    // ------------------------------------------------------------------ views

    /// @notice The commitment `revealScores` checks.
    function scoreCommitment(uint256 jobId, uint256 window, int64[] calldata scores, uint256 copiers,
        bytes32 globalModel, address validator, bytes32 salt) public pure returns (bytes32)
    {
        return keccak256(abi.encode(jobId, window, scores, copiers, globalModel, validator, salt));
    }

    /// @notice Where `window` of `jobId` stands now.
    function phaseOf(uint256 jobId, uint256 window) public view returns (Phase) {
        JobParams storage p = _params[jobId];
        Job storage j = _jobs[jobId];
        if (j.requester == address(0) || window >= p.windows) return Phase.None;
        if (window < j.settled) return Phase.Settled;
        uint256 period = _period(p);
        uint256 t0 = uint256(j.start) + window * period;
        if (block.timestamp < t0) return Phase.Pending;
        uint256 t = block.timestamp - t0;
        if (t < p.submitWindow) return Phase.Submit;
        t -= p.submitWindow;
        if (t < p.revealWindow) return Phase.Reveal;
        t -= p.revealWindow;
        if (t < p.scoreCommitWindow) return Phase.ScoreCommit;
        t -= p.scoreCommitWindow;
        if (t < p.scoreRevealWindow) return Phase.ScoreReveal;
        return Phase.Settleable;
    }

    /// @notice Unix time at which `window` opens for submissions.
    function windowStart(uint256 jobId, uint256 window) external view returns (uint256) {
        return uint256(_jobs[jobId].start) + window * _period(_params[jobId]);
    }

    function getJob(uint256 jobId) external view returns (Job memory) {
        return _jobs[jobId];
    }

    function getParams(uint256 jobId) external view returns (JobParams memory) {
        return _params[jobId];
    }

    function getSubmissions(uint256 jobId, uint256 window) external view returns (Submission[] memory) {
        return _submissions[jobId][window];
    }

    function getVote(uint256 jobId, uint256 window, address validator) external view returns (ScoreVote memory) {
        return _votes[jobId][window][validator];
    }

    function validatorsOf(uint256 jobId) external view returns (address[] memory) {
        return _validators[jobId];
    }

    function roleOf(uint256 jobId, address account) external view returns (Role) {
        return _roles[jobId][account];
    }

    function stakeOf(uint256 jobId, address account) external view returns (uint256) {
        return _stakes[jobId][account];
    }

    /// @notice True while `account` has asked for the job's key and not yet been answered.
    function keyRequested(uint256 jobId, address account) external view returns (bool) {
        return _keyRequested[jobId][account];
    }

    function owed(address account) external view returns (uint256) {
        return _owed[account];
    }

    function jobCount() external view returns (uint256) {
        return _jobCount;
    }

    /// @notice Escrows + stakes + amounts owed: what the contract's token balance must cover.
    function liabilities() external view returns (uint256) {
        return _escrowTotal + _stakeTotal + _owedTotal;
    }

    function token() external view returns (address) {
        return address(_token);
    }

    function registry() external view returns (address) {
        return address(_registry);
    }

    // ------------------------------------------------------------------ internal

    function _check(JobParams calldata p) private pure {
        if (p.windows == 0) revert ScoredRoundsBadParams("windows");
        if (p.maxSubmissions == 0 || p.maxSubmissions > MAX_SUBMISSIONS) revert ScoredRoundsBadParams("maxSubmissions");
        if (p.maxValidators == 0 || p.maxValidators > MAX_VALIDATORS) revert ScoredRoundsBadParams("maxValidators");
        if (p.slashBps > 10_000) revert ScoredRoundsBadParams("slashBps");
        if (p.workerStake == 0 || p.validatorStake == 0) revert ScoredRoundsBadParams("stake");
        if (p.submitWindow == 0 || p.revealWindow == 0 || p.scoreCommitWindow == 0 || p.scoreRevealWindow == 0) {
            revert ScoredRoundsBadParams("phase length");
        }
    }

    function _paramsOf(uint256 jobId) private view returns (JobParams storage) {
        if (_jobs[jobId].requester == address(0)) revert ScoredRoundsNoJob(jobId);
        return _params[jobId];
    }

    function _period(JobParams storage p) private view returns (uint256) {
        return uint256(p.submitWindow) + p.revealWindow + p.scoreCommitWindow + p.scoreRevealWindow;
    }

    function _inPhase(uint256 jobId, uint256 window, Phase expected) private view {
        Phase actual = phaseOf(jobId, window);
        if (actual != expected) revert ScoredRoundsWrongPhase(jobId, window, expected, actual);
    }

    function _join(uint256 jobId, Role role, uint256 stake) private {
        Role had = _roles[jobId][msg.sender];
        if (had != Role.None) revert ScoredRoundsAlreadyJoined(jobId, msg.sender, had);
        _roles[jobId][msg.sender] = role;
        _stakes[jobId][msg.sender] = stake;
        _stakeTotal += stake;
        emit Joined(jobId, msg.sender, role, stake);
        _token.safeTransferFrom(msg.sender, address(this), stake);
    }

    function _requestKey(uint256 jobId, bytes memory pubKey) private {
        _keyRequested[jobId][msg.sender] = true;
        emit KeyRequested(jobId, msg.sender, pubKey);
    }

    function _staked(uint256 jobId, Role role, uint256 least) private view {
        if (_roles[jobId][msg.sender] != role || _stakes[jobId][msg.sender] < least) {
            revert ScoredRoundsNotStaked(jobId, msg.sender, role);
        }
    }

    function _credit(address account, uint256 amount) private {
        _owed[account] += amount;
        _owedTotal += amount;
    }

    /// @dev Move `slashBps` of `account`'s stake to the requester's refund; returns the amount.
    function _slash(uint256 jobId, uint256 window, address account, JobParams storage p) private returns (uint256 cut) {
        uint256 stake = _stakes[jobId][account];
        cut = stake * p.slashBps / 10_000;
        if (cut == 0) return 0;
        _stakes[jobId][account] = stake - cut;
        _stakeTotal -= cut;
        emit Slashed(jobId, window, account, cut);
    }

    /// @dev The validators that revealed; those that committed and did not are slashed.
    function _validatorTurnout(uint256 jobId, uint256 window, JobParams storage p)
        private
        returns (address[] memory revealed, uint256 slashed)
    {
        address[] storage all = _validators[jobId];
        revealed = new address[](all.length);
        uint256 count;
        for (uint256 i = 0; i < all.length; ++i) {
            ScoreVote storage v = _votes[jobId][window][all[i]];
            if (v.revealed) revealed[count++] = all[i];
            else if (v.commitment != 0) slashed += _slash(jobId, window, all[i], p);
        }
        assembly ("memory-safe") {
            mstore(revealed, count)
        }
    }

    /// @dev Median score and copy verdict of each submission (zero for unrevealed ones).
    function _outcomes(uint256 jobId, uint256 window, address[] memory revealed)
        private
        view
        returns (Outcome[] memory out)
    {
        Submission[] storage subs = _submissions[jobId][window];
        out = new Outcome[](subs.length);
        int64[] memory column = new int64[](revealed.length);
        for (uint256 i = 0; i < subs.length; ++i) {
            out[i].worker = subs[i].worker;
            if (!subs[i].revealed || revealed.length == 0) continue;
            uint256 flags;
            for (uint256 k = 0; k < revealed.length; ++k) {
                ScoreVote storage v = _votes[jobId][window][revealed[k]];
                column[k] = v.scores[i];
                if ((v.copiers >> i) & 1 == 1) ++flags;
            }
            out[i].copier = 2 * flags > revealed.length;
            out[i].median = median(column);
            out[i].score = out[i].copier ? int64(0) : out[i].median;
        }
    }

    /// @dev Pro-rata split of the window's reward among positive scores; slashes copiers and
    /// workers that committed without revealing (their cut is credited to the requester).
    function _payWorkers(uint256 jobId, uint256 window, JobParams storage p, Outcome[] memory out)
        private
        returns (uint256 paid)
    {
        Submission[] storage subs = _submissions[jobId][window];
        uint256 positive;
        for (uint256 i = 0; i < out.length; ++i) {
            if (out[i].score > 0) positive += uint256(uint64(out[i].score));
        }
        uint256 slashed;
        for (uint256 i = 0; i < out.length; ++i) {
            if (out[i].copier || !subs[i].revealed) slashed += _slash(jobId, window, out[i].worker, p);
            if (out[i].score > 0) {
                out[i].payout = uint256(p.rewardPerWindow) * uint256(uint64(out[i].score)) / positive;
                paid += out[i].payout;
                _credit(out[i].worker, out[i].payout);
            }
            emit SubmissionSettled(jobId, window, i, out[i].worker, out[i].score, out[i].copier, out[i].payout);
        }
        if (slashed != 0) _credit(_jobs[jobId].requester, slashed);
    }

    /// @dev The global model hash more than half of `revealed` named, or zero.
    function _majorityModel(uint256 jobId, uint256 window, address[] memory revealed) private view returns (bytes32) {
        for (uint256 a = 0; a < revealed.length; ++a) {
            bytes32 h = _votes[jobId][window][revealed[a]].globalModel;
            uint256 same;
            for (uint256 b = 0; b < revealed.length; ++b) {
                if (_votes[jobId][window][revealed[b]].globalModel == h) ++same;
            }
            if (2 * same > revealed.length) return h;
        }
        return 0;
    }

    /// @dev Slash validators far from the aggregate; the rest share the fee equally.
    function _payValidators(uint256 jobId, uint256 window, JobParams storage p, address[] memory revealed,
        Outcome[] memory out, bytes32 model, uint256 refund) private returns (uint256 fees, uint256)
    {
        bool[] memory far = new bool[](revealed.length);
        uint256 good;
        for (uint256 k = 0; k < revealed.length; ++k) {
            ScoreVote storage v = _votes[jobId][window][revealed[k]];
            far[k] = (model != 0 && v.globalModel != model) || _deviates(v.scores, out, p);
            if (far[k]) refund += _slash(jobId, window, revealed[k], p);
            else ++good;
        }
        if (good == 0) return (0, refund);
        uint256 fee = p.validatorFeePerWindow / good;
        for (uint256 k = 0; k < revealed.length; ++k) {
            if (far[k]) continue;
            fees += fee;
            _credit(revealed[k], fee);
            emit ValidatorPaid(jobId, window, revealed[k], fee);
        }
        return (fees, refund);
    }

    /// @dev L1 distance of `scores` from the medians above `deviationBps` of the medians' L1
    /// norm plus `deviationFloor`. A copier's raw median counts (its copy is a separate vote).
    function _deviates(int64[] storage scores, Outcome[] memory out, JobParams storage p) private view returns (bool) {
        uint256 dist;
        uint256 norm;
        for (uint256 i = 0; i < out.length; ++i) {
            int256 m = out[i].median;
            int256 d = int256(scores[i]) - m;
            dist += uint256(d < 0 ? -d : d);
            norm += uint256(m < 0 ? -m : m);
        }
        return dist * 10_000 > norm * p.deviationBps + uint256(p.deviationFloor) * 10_000;
    }

    /// @notice Median of `xs` (mean of the middle two for an even count, rounded toward zero);
    /// sorts `xs` in place. Empty input gives zero.
    function median(int64[] memory xs) public pure returns (int64) {
        uint256 n = xs.length;
        if (n == 0) return 0;
        for (uint256 i = 1; i < n; ++i) {
            int64 x = xs[i];
            uint256 k = i;
            while (k > 0 && xs[k - 1] > x) {
                xs[k] = xs[k - 1];
                --k;
            }
            xs[k] = x;
        }
        if (n % 2 == 1) return xs[n / 2];
        return int64((int256(xs[n / 2 - 1]) + int256(xs[n / 2])) / 2);
    }
}
