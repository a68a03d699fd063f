// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {JobMarket} from "../JobMarket.sol";

/// @title ReentrantReceiver
/// @notice Test-only attacker requester: posts a job, cancels it, withdraws, and when the
/// tokens arrive (through {ReentrantToken}'s hook) tries to withdraw again.
contract ReentrantReceiver {
    JobMarket public immutable market;
    bytes public lastReentryRevert;
    uint256 public reentries;

    constructor(JobMarket market_) {
        market = market_;
    }

    function postAndCancel(JobMarket.JobParams calldata p) external returns (uint256 jobId) {
        IERC20(market.token()).approve(address(market), type(uint256).max);
        jobId = market.postJob(p);
        market.cancelJob(jobId);
    }

    function withdraw() external {
        market.withdraw();
    }

    function tokensReceived(address, uint256) external {
        reentries += 1;
        try market.withdraw() {} catch (bytes memory reason) {
            lastReentryRevert = reason;
        }
    }
}
