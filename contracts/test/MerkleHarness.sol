// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title MerkleHarness
/// @notice Test-only: exposes OpenZeppelin's MerkleProof over checkpoint leaves
/// `keccak256(abi.encode(index, h))`, exactly as the protocol's contracts check commitments.
contract MerkleHarness {
    /// @notice The leaf for checkpoint `index` with hash `h`.
    function leaf(uint256 index, bytes32 h) public pure returns (bytes32) {
        return keccak256(abi.encode(index, h));
    }

    /// @notice True if checkpoint `index` with hash `h` is under `root`.
    function verify(bytes32[] calldata proof, bytes32 root, uint256 index, bytes32 h)
        external
        pure
        returns (bool)
    {
        return MerkleProof.verifyCalldata(proof, root, leaf(index, h));
    }

    /// @notice OpenZeppelin's `processProof` for a raw leaf.
    function processProof(bytes32[] calldata proof, bytes32 leafHash) external pure returns (bytes32) {
        return MerkleProof.processProofCalldata(proof, leafHash);
    }
}
