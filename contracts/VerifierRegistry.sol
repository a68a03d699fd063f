// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {IVerifierRegistry} from "./interfaces/IVerifierRegistry.sol";

/// @title VerifierRegistry
/// @notice Staked verifiers: the pool referees are drawn from, and who may challenge.
///
/// A verifier registers with its 64-byte uncompressed secp256k1 public key (so requesters can
/// wrap data keys to it) and a stake of at least `minStake`; the stake is held by the
/// {JobMarket} (the one vault) on this registry's account. `deregister` leaves the pool at
/// once and starts an unbonding delay, longer than any dispute can last, during which the
/// stake can still be slashed for referee duty already assigned; then `withdrawStake`.
/// A referee drawn for a dispute is on duty: its unbonding cannot end before a full unbonding
/// delay after that dispute's reveal deadline, so a `settle` sent up to that long after the
/// vote still reaches the stake of a referee that did not vote. (The duty's end is kept in
/// the referee's pool entry, which the draw reads anyway, and moves into `unbondingEnds` when
/// it leaves the pool.)
contract VerifierRegistry is IVerifierRegistry, ReentrancyGuardTransient {
    enum VerifierStatus {
        None,
        Active,
        Unbonding
    }

    /// @notice `unbondingEnds` is unix seconds in 40 bits (to the year 36812).
    struct Verifier {
        VerifierStatus status;
        uint40 unbondingEnds;
        uint32 poolIndex;
        uint128 stake;
        bytes pubKey;
    }

    IJobMarket private immutable _market;
    uint256 private immutable _minStake;
    uint64 private immutable _unbondingDelay;

    mapping(address verifier => Verifier) private _verifiers;
    /// @dev Pool entries: the member's address in bits 0-159, the end of its referee duty
    /// (unix seconds, see {drawReferees}) in bits 160-199.
    uint256[] private _pool;
    /// @dev The market's resolver once {bindResolver} copied it (saves asking the market).
    address private _resolver;

    event VerifierRegistered(address indexed verifier, bytes pubKey, uint256 stake);
    event VerifierDeregistered(address indexed verifier, uint64 unbondingEnds);
    event VerifierSlashed(address indexed verifier, uint256 amount, uint256 remaining);
    event StakeWithdrawn(address indexed verifier, uint256 amount);

    error VerifierRegistryAlreadyRegistered(address verifier, VerifierStatus status);
    error VerifierRegistryNotActive(address verifier, VerifierStatus status);
    error VerifierRegistryStakeTooLow(uint256 stake, uint256 minStake);
    error VerifierRegistryStakeTooHigh(uint256 stake, uint256 maxStake);
    error VerifierRegistryBadPubKey(address caller, address derived);
    error VerifierRegistryStillUnbonding(address verifier, uint64 unbondingEnds);
    error VerifierRegistryNotResolver(address caller);

    /// @param market The {JobMarket} holding the stakes; its resolver module may slash.
    /// @param minStake Least stake to register (and to stay in the pool after a slash).
    /// @param unbondingDelay Seconds between `deregister` and `withdrawStake`; must exceed the
    /// longest dispute (the resolver checks this at its construction).
    constructor(IJobMarket market, uint256 minStake, uint64 unbondingDelay) {
        _market = market;
        _minStake = minStake;
        _unbondingDelay = unbondingDelay;
    }

    /// @notice Copy the market's resolver module here, once the market is wired (anyone; the
    /// deployment does it). Only a gas saving: until then the registry asks the market.
    function bindResolver() external {
        (, address resolver) = _market.modules();
        if (_resolver != address(0) || resolver == address(0)) revert VerifierRegistryNotResolver(resolver);
        _resolver = resolver;
    }

    /// @notice Join the pool with `stake` tokens (approve the market first).
    /// Emits a {VerifierRegistered} event.
    function register(bytes calldata pubKey, uint256 stake) external nonReentrant {
        Verifier storage v = _verifiers[msg.sender];
        if (v.status != VerifierStatus.None) revert VerifierRegistryAlreadyRegistered(msg.sender, v.status);
        address derived = pubKey.length == 64 ? address(uint160(uint256(keccak256(pubKey)))) : address(0);
        if (derived != msg.sender) revert VerifierRegistryBadPubKey(msg.sender, derived);
        if (stake < _minStake) revert VerifierRegistryStakeTooLow(stake, _minStake);
        if (stake > type(uint128).max) revert VerifierRegistryStakeTooHigh(stake, type(uint128).max);
        v.status = VerifierStatus.Active;
        v.stake = uint128(stake);
        v.pubKey = pubKey;
        v.poolIndex = uint32(_pool.length);
        _pool.push(uint160(msg.sender));
        emit VerifierRegistered(msg.sender, pubKey, stake);
        _market.collect(msg.sender, stake);
    }

    /// @notice Leave the pool; the stake can be withdrawn after the unbonding delay.
    /// Emits a {VerifierDeregistered} event.
    function deregister() external {
        Verifier storage v = _verifiers[msg.sender];
        if (v.status != VerifierStatus.Active) revert VerifierRegistryNotActive(msg.sender, v.status);
        _leavePool(msg.sender, v);
    }

    /// @notice After unbonding, credit the remaining stake to the caller's market balance
    /// (then `JobMarket.withdraw`). The caller may register again later.
    /// Emits a {StakeWithdrawn} event.
    function withdrawStake() external nonReentrant {
        Verifier storage v = _verifiers[msg.sender];
        if (v.status != VerifierStatus.Unbonding) revert VerifierRegistryNotActive(msg.sender, v.status);
        if (block.timestamp < v.unbondingEnds) revert VerifierRegistryStillUnbonding(msg.sender, v.unbondingEnds);
        uint256 amount = v.stake;
        delete _verifiers[msg.sender];
        emit StakeWithdrawn(msg.sender, amount);
        if (amount != 0) _market.credit(msg.sender, amount);
    }

    /// @inheritdoc IVerifierRegistry
    /// @dev Takes at most the remaining stake; a verifier left below `minStake` leaves the
    /// pool and starts unbonding. Emits a {VerifierSlashed} event.
    function slash(address verifier, uint256 amount) external returns (uint256 slashed) {
        address resolver = _onlyResolver();
        slashed = _slash(verifier, _verifiers[verifier], amount);
        if (slashed != 0) _market.moveHeld(resolver, slashed);
    }


    // ------------------------------------------------------------------ views

    /// @inheritdoc IVerifierRegistry
    function poolSize() external view returns (uint256) {
        return _pool.length;
    }

    /// @inheritdoc IVerifierRegistry
    function poolAt(uint256 index) external view returns (address) {
        return address(uint160(_pool[index]));
    }

    /// @inheritdoc IVerifierRegistry
    /// @dev Emits nothing; the resolver's {DisputeResolver-CommitteeDrawn} names the committee.
    function drawReferees(bytes32 seed, uint256 size, address[3] calldata excluded, uint256 voteEnds)
        external
        returns (address[] memory chosen, uint256 count)
    {
        _onlyResolver();
        chosen = new address[](size);
        uint256[] memory at = new uint256[](size);
        uint256 n = _pool.length;
        if (n == 0) return (chosen, 0);
        for (uint256 attempt = 0; attempt < 2 * size && count < size; ++attempt) {
            uint256 pick;
            assembly ("memory-safe") {
                mstore(0x00, seed)
                mstore(0x20, attempt)
                pick := keccak256(0x00, 0x40)
            }
            uint256 index = pick % n;
            address cand = address(uint160(_pool[index]));
            if (_eligible(cand, excluded, chosen, count)) (at[count], chosen[count++]) = (index, cand);
        }
        uint256 start = uint256(seed) % n;
        for (uint256 k = 0; k < n && count < size; ++k) {
            uint256 index = (start + k) % n;
            address cand = address(uint160(_pool[index]));
            if (_eligible(cand, excluded, chosen, count)) (at[count], chosen[count++]) = (index, cand);
        }
        if (count < size) return (chosen, count);
        uint256 dutyEnds = SafeCast.toUint40(voteEnds + _unbondingDelay);
        for (uint256 i = 0; i < size; ++i) {
            uint256 entry = _pool[at[i]];
            if (entry >> 160 < dutyEnds) _pool[at[i]] = uint160(entry) | (dutyEnds << 160);
        }
    }

    /// @notice Every pool member (order changes when someone leaves).
    function pool() external view returns (address[] memory members) {
        uint256 n = _pool.length;
        members = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            members[i] = address(uint160(_pool[i]));
        }
    }

    /// @inheritdoc IVerifierRegistry
    function stakeOf(address verifier) external view returns (uint256) {
        return _verifiers[verifier].stake;
    }

    /// @inheritdoc IVerifierRegistry
    function isActive(address verifier) external view returns (bool) {
        return _verifiers[verifier].status == VerifierStatus.Active;
    }

    /// @inheritdoc IVerifierRegistry
    function pubKeyOf(address verifier) external view returns (bytes memory) {
        return _verifiers[verifier].pubKey;
    }

    function getVerifier(address verifier) external view returns (Verifier memory) {
        return _verifiers[verifier];
    }

    function market() external view returns (address) {
        return address(_market);
    }

    function minStake() external view returns (uint256) {
        return _minStake;
    }

    /// @inheritdoc IVerifierRegistry
    function unbondingDelay() external view returns (uint64) {
        return _unbondingDelay;
    }

    // ------------------------------------------------------------------ internal

    function _onlyResolver() private view returns (address resolver) {
        resolver = _resolver;
        if (resolver == address(0)) (, resolver) = _market.modules();
        if (msg.sender != resolver) revert VerifierRegistryNotResolver(msg.sender);
    }

    /// @dev Take up to `amount` of the stake (no token moves); below `minStake` an active
    /// verifier leaves the pool. Emits a {VerifierSlashed} event.
    function _slash(address verifier, Verifier storage v, uint256 amount) private returns (uint256 slashed) {
        uint128 stake = v.stake;
        slashed = amount < stake ? amount : stake;
        // cannot underflow: slashed <= stake
        unchecked {
            stake -= uint128(slashed);
        }
        v.stake = stake;
        emit VerifierSlashed(verifier, slashed, stake);
        if (v.status == VerifierStatus.Active && stake < _minStake) _leavePool(verifier, v);
    }

    function _eligible(address cand, address[3] calldata excluded, address[] memory chosen, uint256 count)
        private
        pure
        returns (bool)
    {
        if (cand == excluded[0] || cand == excluded[1] || cand == excluded[2]) return false;
        for (uint256 i = 0; i < count; ++i) {
            if (chosen[i] == cand) return false;
        }
        return true;
    }

    function _leavePool(address verifier, Verifier storage v) private {
        uint256 last = _pool.length - 1;
        uint32 index = v.poolIndex;
        uint256 dutyEnds = _pool[index] >> 160;
        if (index != last) {
            uint256 moved = _pool[last];
            _pool[index] = moved;
            _verifiers[address(uint160(moved))].poolIndex = index;
        }
        _pool.pop();
        v.status = VerifierStatus.Unbonding;
        v.poolIndex = 0;
        uint256 ends = block.timestamp + _unbondingDelay;
        // a referee's unbonding lasts until its last duty's end (see {drawReferees})
        v.unbondingEnds = uint40(ends > dutyEnds ? ends : dutyEnds);
        emit VerifierDeregistered(verifier, v.unbondingEnds);
    }
}
