// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {JobMarket} from "../JobMarket.sol";

/// @title SilentRequester
/// @notice Test-only attacker requester: posts jobs and takes workers' claims but has no way
/// to deliver keys, hoping to lock their stakes. The key deadline and `abandon` defeat it.
contract SilentRequester {
    JobMarket public immutable market;

    constructor(JobMarket market_) {
        market = market_;
    }

    function post(JobMarket.JobParams calldata p) external returns (uint256) {
        IERC20(market.token()).approve(address(market), type(uint256).max);
        return market.postJob(p);
    }

    function withdraw() external {
        market.withdraw();
    }
}
