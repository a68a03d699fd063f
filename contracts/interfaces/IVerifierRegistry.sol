// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title IVerifierRegistry
/// @notice The referee pool as the {DisputeResolver} sees it.
interface IVerifierRegistry {
    /// @notice Number of verifiers currently in the pool (registered, not unbonding).
    function poolSize() external view returns (uint256);

    /// @notice The pool member at `index` (0 <= index < poolSize()). Order changes on deregister.
    function poolAt(uint256 index) external view returns (address);

    /// @notice Current stake of `verifier` (also while unbonding, until withdrawn).
    function stakeOf(address verifier) external view returns (uint256);

    /// @notice Whether `verifier` is in the pool (may challenge and be drawn).
    function isActive(address verifier) external view returns (bool);

    /// @notice The 64-byte secp256k1 public key `verifier` registered (empty if none).
    function pubKeyOf(address verifier) external view returns (bytes memory);

    /// @notice Seconds between leaving the pool and withdrawing the stake.
    function unbondingDelay() external view returns (uint64);

    /// @notice Draw up to `size` distinct pool members other than the three `excluded`
    /// addresses, from `seed`: first `2 * size` random picks (`keccak256(abi.encode(seed, i))`
    /// modulo the pool size), then a scan from `uint256(seed) % poolSize`. Returns the chosen
    /// addresses (`size` entries, the first `count` set). Resolver only: when all `size` are
    /// found, none of them can withdraw its stake until `voteEnds` (the dispute's reveal
    /// deadline) plus the unbonding delay, so a late settlement can still slash it.
    function drawReferees(bytes32 seed, uint256 size, address[3] calldata excluded, uint256 voteEnds)
        external
        returns (address[] memory chosen, uint256 count);

    /// @notice Resolver only: move `amount` of `verifier`'s stake to the resolver's holdings.
    function slash(address verifier, uint256 amount) external returns (uint256 slashed);
}
