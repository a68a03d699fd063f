// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice Test-only receiver hook, ERC-777 style, that {ReentrantToken} calls on recipients.
interface ITokenReceiver {
    function tokensReceived(address from, uint256 amount) external;
}

/// @title ReentrantToken
/// @notice Test-only attacker token: on every transfer it (1) calls an armed target with armed
/// calldata, e.g. back into the market, and (2) calls `tokensReceived` on a recipient contract.
/// Each re-entry's revert data is recorded in `lastHookRevert` so tests can check it failed.
contract ReentrantToken is ERC20 {
    address public hookTarget;
    bytes public hookData;
    bytes public lastHookRevert;
    uint256 public hookCalls;
    bool private _inHook;

    constructor() ERC20("Reentrant", "RE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function arm(address target, bytes calldata data) external {
        hookTarget = target;
        hookData = data;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (_inHook || from == address(0)) return;
        _inHook = true;
        if (hookTarget != address(0)) {
            hookCalls += 1;
            (bool ok, bytes memory ret) = hookTarget.call(hookData);
            lastHookRevert = ok ? bytes("") : ret;
        }
        if (to.code.length > 0) {
            try ITokenReceiver(to).tokensReceived(from, value) {} catch {}
        }
        _inHook = false;
    }
}
