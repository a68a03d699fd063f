// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title DevToken
/// @notice The ERC-20 the local deployment uses for rewards, stakes, bonds and fees.
/// Production deployments point the market at an existing token instead.
contract DevToken is ERC20, Ownable {
    constructor(address initialOwner) ERC20("Veritrain Dev Token", "VTD") Ownable(initialOwner) {}

    /// @notice Mint `amount` tokens to `to`. Only the owner (the deployer) may mint.
    /// Emits a {Transfer} event.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
