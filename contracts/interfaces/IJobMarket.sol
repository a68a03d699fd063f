// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title IJobMarket
/// @notice What the market's two modules (the {VerifierRegistry} and the {DisputeResolver})
/// need from the market: it is the single vault, so every token they account for is held by
/// the market and moved by these calls only. Each module may only move what it deposited.
interface IJobMarket {
    /// @notice What the resolver needs to know about a revealed claim it puts in dispute.
    struct DisputedClaim {
        bytes32 root;
        uint32 checkpointCount;
    }

    /// @notice Pull `amount` from `from` (which approved the market) into the caller module's holdings.
    function collect(address from, uint256 amount) external;

    /// @notice Move `amount` of the caller module's holdings to what `to` may withdraw.
    function credit(address to, uint256 amount) external;

    /// @notice Resolver only: move `amounts[i]` of the resolver's holdings to what `to[i]` may
    /// withdraw, and `toEscrow` into job `jobId`'s escrow, in one call (a settlement's payouts).
    function creditMany(address[] calldata to, uint256[] calldata amounts, uint256 jobId, uint256 toEscrow)
        external;

    /// @notice Move `amount` of the caller module's holdings to another module's holdings.
    function moveHeld(address toModule, uint256 amount) external;

    /// @notice Move `amount` of the caller module's holdings into job `jobId`'s escrow.
    function creditEscrow(uint256 jobId, uint256 amount) external;

    /// @notice Resolver only: open one more dispute of a claim, which freezes it: a revealed
    /// claim still inside its challenge window, or a claim already disputed.
    function openDispute(uint256 taskId, address worker) external returns (DisputedClaim memory);

    /// @notice A claim's forced-error seal (docs/spec/forced.md; zero without a seed).
    function sealOf(uint256 taskId, address worker) external view returns (bytes32);

    /// @notice Resolver only: a forced job's claim opened its seed (revealed, past its challenge
    /// deadline); a selected one stays open to challenge one more window (the opt-out check).
    function openSeal(uint256 taskId, address worker, bool selected) external;

    /// @notice The root and leaf count of a disputed claim (reverts unless Disputed).
    function disputedClaim(uint256 taskId, address worker) external view returns (DisputedClaim memory);

    /// @notice Resolver only: one dispute of the claim ended without slashing it; when none is
    /// left open it returns to Revealed, open to challenge for a full window.
    function releaseClaim(uint256 taskId, address worker) external;

    /// @notice Resolver only: a disputed claim lost; its whole stake moves to the resolver's
    /// holdings and the slot reopens. Returns the stake (0 if another dispute slashed it).
    function slashClaim(uint256 taskId, address worker) external returns (uint256 stake);

    /// @notice Resolver only: pay up to the job's per-dispute referee fee from its free escrow
    /// into the resolver's holdings. Returns the amount moved.
    function takeRefereeFee(uint256 jobId) external returns (uint256 fee);

    /// @notice Tokens held on behalf of `module` (verifier stakes for the registry, challenge
    /// bonds for the resolver).
    function heldBy(address module) external view returns (uint256);

    /// @notice The registry and resolver modules (zero until wired).
    function modules() external view returns (address registry, address resolver);

    /// @notice The account that posted job `jobId` (zero for an unknown job).
    function requesterOf(uint256 jobId) external view returns (address);

    /// @notice The ERC-20 every amount is denominated in.
    function token() external view returns (address);
}

/// @title IForcedErrors
/// @notice What the market reads from the resolver once, when the modules are wired.
interface IForcedErrors {
    /// @notice The share of redundancy-1 claims drawn as forced errors, and the share of such a
    /// job's rewards `postJob` adds for the jackpot pool (basis points).
    function forcedErrorParams() external view returns (uint16 forcedErrorBps, uint16 jackpotFeeBps);
}

/// @title IJobMarketJobs
/// @notice The market's job view, as the resolver reads it (the layout of `JobMarket.Job`).
interface IJobMarketJobs {
    struct JobView {
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
        uint8 status;
        bytes32 shardsRoot;
        bytes32 startsRoot;
        bool startsKeyed;
        string specCid;
    }

    function getJob(uint256 jobId) external view returns (JobView memory);
}
